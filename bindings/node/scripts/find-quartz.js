#!/usr/bin/env node
// find-quartz.js - where binding.gyp finds libquartz: prints one value for
// gyp's <!(...) expansion and fails with a clear message when it is missing.
//   find-quartz.js lib      the static library, $QUARTZ_BUILD_DIR/lib/libquartz.a
//   find-quartz.js include  the public headers, <source root>/include
//   find-quartz.js libs     the libraries libquartz.a needs (pkg-config: lmdb, libxxhash)
// QUARTZ_BUILD_DIR defaults to ../../build (the meson build of this source tree).
'use strict';
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const here = path.resolve(__dirname, '..');
const root = path.resolve(here, '..', '..');
const build = path.resolve(here, process.env.QUARTZ_BUILD_DIR || path.join(root, 'build'));
const what = process.argv[2];

function die(msg) {
  process.stderr.write(`quartz binding: ${msg}\n`);
  process.exit(1);
}

if (what === 'lib') {
  const lib = path.join(build, 'lib', 'libquartz.a');
  if (!fs.existsSync(lib))
    die(`${lib} not found: build libquartz first (meson setup build -Dbuildtype=release && ninja -C build) ` +
        'or point QUARTZ_BUILD_DIR at a meson build directory');
  process.stdout.write(lib);
} else if (what === 'include') {
  process.stdout.write(path.join(root, 'include'));
} else if (what === 'libs') {
  // libquartz.a was built with LMDB unless meson had -Dlmdb=disabled; ask meson's own record.
  const info = path.join(build, 'meson-info', 'intro-dependencies.json');
  let pkgs = ['lmdb', 'libxxhash'];
  try {
    const deps = JSON.parse(fs.readFileSync(info, 'utf8')).map((d) => d.name);
    pkgs = pkgs.filter((p) => deps.includes(p));
  } catch (e) { /* no meson-info: assume the default build */ }
  let flags = '';
  try {
    flags = execFileSync('pkg-config', ['--libs', ...pkgs], { encoding: 'utf8' }).trim();
  } catch (e) {
    flags = pkgs.map((p) => (p === 'libxxhash' ? '-lxxhash' : `-l${p}`)).join(' ');
  }
  process.stdout.write(`${flags} -lpthread -lm`);
} else {
  die(`usage: find-quartz.js lib|include|libs`);
}
