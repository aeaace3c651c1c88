#!/usr/bin/env node
// find-quartz.js - where binding.gyp finds libquartz: prints the value of one
// gyp <!(...) expansion and fails with a clear message when it is missing.
//   find-quartz.js lib      the library to link: $QUARTZ_BUILD_DIR/lib/libquartz.a
//   find-quartz.js include  the public headers: <source root>/include
//   find-quartz.js libs     the libraries libquartz.a needs (pkg-config: lmdb, libxxhash)
// QUARTZ_BUILD_DIR (absolute, or relative to bindings/node) picks the meson build
// directory; it defaults to ../../build (the meson build of this source tree).
// When QUARTZ_BUILD_DIR is unset and that build has no libquartz.a, an installed
// libquartz (pkg-config quartz: libquartz.so.1 and its headers) is used instead.
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

function pkgConfig(...args) {
  try {
    return execFileSync('pkg-config', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (e) {
    return null;
  }
}

const staticLib = path.join(build, 'lib', 'libquartz.a');
const installed = !process.env.QUARTZ_BUILD_DIR && !fs.existsSync(staticLib) && pkgConfig('--exists', 'quartz') !== null;

if (what === 'lib') {
  if (installed) {
    process.stdout.write(pkgConfig('--libs', 'quartz'));
  } else if (!fs.existsSync(staticLib)) {
    die(`${staticLib} not found: build libquartz first (meson setup build -Dbuildtype=release && ninja -C build) ` +
        'or point QUARTZ_BUILD_DIR at a meson build directory');
  } else {
    process.stdout.write(staticLib);
  }
} else if (what === 'include') {
  if (installed) process.stdout.write(pkgConfig('--variable=includedir', 'quartz'));
  else process.stdout.write(path.join(root, 'include'));
} else if (what === 'libs') {
  if (installed) {
    process.stdout.write('-lpthread -lm'); // the shared library brings its own dependencies
    process.exit(0);
  }
  // libquartz.a was built with LMDB unless meson had -Dlmdb=disabled; ask meson's own record.
  const info = path.join(build, 'meson-info', 'intro-dependencies.json');
  let pkgs = ['lmdb', 'libxxhash'];
  try {
    const deps = JSON.parse(fs.readFileSync(info, 'utf8')).map((d) => d.name);
    pkgs = pkgs.filter((p) => deps.includes(p));
  } catch (e) { /* no meson-info: assume the default build */ }
  const flags = pkgConfig('--libs', ...pkgs) ?? pkgs.map((p) => (p === 'libxxhash' ? '-lxxhash' : `-l${p}`)).join(' ');
  process.stdout.write(`${flags} -lpthread -lm`);
} else {
  die(`usage: find-quartz.js lib|include|libs`);
}
