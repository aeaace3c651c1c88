#!/usr/bin/env node
// overhead.mjs - the Node binding's own cost per search call, apart from the
// search: node and C (bench/node/qz_search_timer.c) run the same single
// 10-NN queries on the same small database directory (so the search itself
// is short and the per-call cost shows), taking turns, CPU time of each
// process per call, best of --rounds. Prints a markdown section; with --append
// FILE it is appended to FILE (bench/results/node.md).
// Usage: node bench/node/overhead.mjs [--n 2000] [--dim 100] [--calls 100000] [--rounds 5]
//          [--build build] [--append bench/results/node.md]
import { createRequire } from 'node:module';
import { execFileSync, spawn } from 'node:child_process';
import readline from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const opt = { n: 2000, dim: 100, calls: 100000, rounds: 5, build: path.join(root, 'build'), append: '' };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const key = argv[i].replace(/^--/, '');
  if (!(key in opt) || i + 1 >= argv.length) throw new Error(`bad option ${argv[i]}`);
  opt[key] = key === 'build' || key === 'append' ? path.resolve(argv[i + 1]) : Number(argv[i + 1]);
}
const command = ['node', path.relative(root, fileURLToPath(import.meta.url)), ...argv].join(' ');
const quartz = require(path.join(root, 'bindings', 'node'));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'qz-overhead-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

// data: fixed-seed normal vectors; the queries are 100 of them, written as .fvecs for the C side
let seed = 12345;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
};
const { n, dim } = opt;
const base = Float32Array.from({ length: n * dim }, rnd);
const nq = 100;
const fvecs = Buffer.alloc(nq * (4 + dim * 4));
for (let i = 0; i < nq; i++) {
  fvecs.writeInt32LE(dim, i * (4 + dim * 4));
  for (let j = 0; j < dim; j++) fvecs.writeFloatLE(base[i * dim + j], i * (4 + dim * 4) + 4 + j * 4);
}
fs.writeFileSync(path.join(work, 'query.fvecs'), fvecs);
const dir = path.join(work, 'db');
let db = new quartz.Database(dir, { dim, metric: 'cosine', durability: 'none', threads: 1 });
db.insertBatch(Array.from({ length: n }, (_, i) => i), base);
db.close();
db = new quartz.Database(dir, { readonly: true, threads: 1 });
const rows = Array.from({ length: nq }, (_, i) => base.subarray(i * dim, (i + 1) * dim));

const timerBin = path.join(work, 'qz_search_timer');
const libs = execFileSync('node', [path.join(root, 'bindings', 'node', 'scripts', 'find-quartz.js'), 'libs'],
  { encoding: 'utf8', env: { ...process.env, QUARTZ_BUILD_DIR: opt.build } }).trim().split(/\s+/);
execFileSync('cc', ['-O2', '-std=c11', '-D_GNU_SOURCE', '-o', timerBin, path.join(here, 'qz_search_timer.c'),
  '-I', path.join(root, 'include'), path.join(opt.build, 'lib', 'libquartz.a'), ...libs], { stdio: 'inherit' });
const timer = spawn(timerBin, [dir, path.join(work, 'query.fvecs'), String(nq), '1'], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = readline.createInterface({ input: timer.stdout })[Symbol.asyncIterator]();
const ask = async (cmd) => {
  if (cmd) timer.stdin.write(`${cmd}\n`);
  return (await lines.next()).value.split(' ');
};
await ask(null);

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const uptimeBefore = execFileSync('uptime', { encoding: 'utf8' }).trim();
const best = { node: Infinity, nodeOpts: Infinity, c: Infinity, has: Infinity };
const ef = 10;
const opts = { ef };
for (let r = 0; r < opt.rounds; r++) {
  let c0 = cpu();
  for (let i = 0; i < opt.calls; i++) db.search(rows[i % nq], 10, opts);
  best.nodeOpts = Math.min(best.nodeOpts, cpu() - c0);
  const [, , , cSec] = await ask(`single ${ef} ${opt.calls}`);
  best.c = Math.min(best.c, Number(cSec));
  db.setParam('efSearch', ef); // the same search through the database default: no options object
  c0 = cpu();
  for (let i = 0; i < opt.calls; i++) db.search(rows[i % nq], 10);
  best.node = Math.min(best.node, cpu() - c0);
  c0 = cpu();
  for (let i = 0; i < opt.calls; i++) db.has(i);
  best.has = Math.min(best.has, cpu() - c0);
}
await ask('quit').catch(() => {});
db.close();
const us = (s) => ((s / opt.calls) * 1e6).toFixed(2);
const md = [
  '',
  '## Per-call cost of the binding (small database, CPU time)',
  '',
  `- command: \`${command}\`; date ${new Date().toISOString()}; load before \`${uptimeBefore}\`, ` +
    `after \`${execFileSync('uptime', { encoding: 'utf8' }).trim()}\``,
  `- ${n} random ${dim}-d vectors (cosine) in a directory opened read-only by both processes; ${opt.calls} single ` +
    `10-NN searches at ef ${ef} per round, node and C taking turns, best of ${opt.rounds} rounds, CPU time of each process`,
  '',
  '| call | µs CPU per call |',
  '|---|---:|',
  `| C: qz_db_search() (qz_search_timer.c) | ${us(best.c)} |`,
  `| node: db.search(q, 10) | ${us(best.node)} |`,
  `| node: db.search(q, 10, { ef: 10 }) | ${us(best.nodeOpts)} |`,
  `| node: db.has(id) (a call that does almost nothing) | ${us(best.has)} |`,
  '',
  `Binding cost per search: ${((best.node - best.c) / opt.calls * 1e6).toFixed(2)} µs without options, ` +
    `${((best.nodeOpts - best.c) / opt.calls * 1e6).toFixed(2)} µs with an options object.`,
  '',
];
const text = md.join('\n');
process.stdout.write(text);
if (opt.append) fs.appendFileSync(opt.append, text);
