# The addon links the meson-built static libquartz.a (position-independent
# code), so quartz.node is self-contained: no libquartz.so to find at run
# time. Its own symbols stay hidden (--exclude-libs). QUARTZ_BUILD_DIR picks
# the meson build directory (default ../../build; without one, an installed
# libquartz found by pkg-config). See scripts/find-quartz.js and README.md.
{
  "targets": [
    {
      "target_name": "quartz",
      "sources": [
        "src/addon.c",
        "src/args.c",
        "src/async.c",
        "src/db.c",
        "src/errors.c",
        "src/kv.c",
        "src/search.c",
        "src/write.c"
      ],
      "include_dirs": ["<!(node scripts/find-quartz.js include)"],
      "libraries": [
        "<!@(node scripts/find-quartz.js lib)",
        "<!@(node scripts/find-quartz.js libs)"
      ],
      "cflags": ["-fvisibility=hidden"],
      "cflags_c": ["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "ldflags": ["-Wl,--exclude-libs,ALL"],
      "defines": ["_GNU_SOURCE"]
    }
  ]
}
