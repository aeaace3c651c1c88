#!/usr/bin/env node
// bench_node.mjs - libquartz through the Node binding (bindings/node) against
// the usearch npm package, in the same run, on one texmex dataset folder
// (GloVe by default), and libquartz's own C figures from build/bench/bench_index
// run right after on the same data, so the binding's cost over C can be read off.
//
// For each engine: one build with the same graph parameters (M = connectivity,
// ef_construction = expansion_add, cosine), then for each ef (= expansion_search):
//   batch   every query in one call with k = 10 on --threads threads
//           (db.search(matrix) -> qz_db_search_batch; usearch index.search(matrix, k, threads)),
//           best of --repeats, as QPS, with tie-aware recall@10 (as bench/datasets.c judges it);
//           the engines take turns within every repeat, so load from other users falls on both;
//   single  one query per call on the main thread (--single calls, best of --repeats), in µs per call.
// bench_index prints the C figures: threads=1 (one qz_db_search per query, a single
// thread) and threads=N (N threads calling qz_db_search).
//
// Setup: (cd bench/node && npm ci) for usearch; the addon built
// (bash bindings/node/run-tests.sh or npm install in bindings/node); ninja -C build.
// Usage: node bench/node/bench_node.mjs [--data DIR] [--ef 10,20,40,80,120,200,400] [--M 16]
//          [--efc 200] [--threads 2] [--repeats 3] [--single 2000] [--limit-queries N]
//          [--c-bench build/bench/bench_index | --no-c] [--out bench/results/node.md]
import { createRequire } from 'node:module';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

// ---- options ----------------------------------------------------------------
const opt = {
  data: path.join(process.env.QZ_DATA_DIR || path.resolve(root, '..', 'shared', 'data'), 'glove6b-100-angular'),
  ef: [10, 20, 40, 80, 120, 200, 400],
  M: 16,
  efc: 200,
  threads: 2,
  repeats: 3,
  single: 2000,
  limitQueries: 0,
  cBench: path.join(root, 'build', 'bench', 'bench_index'),
  out: path.join(root, 'bench', 'results', 'node.md'),
  k: 10,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => {
    if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
    return argv[++i];
  };
  if (a === '--data') opt.data = path.resolve(val());
  else if (a === '--ef') opt.ef = val().split(',').map(Number);
  else if (a === '--M') opt.M = Number(val());
  else if (a === '--efc') opt.efc = Number(val());
  else if (a === '--threads') opt.threads = Number(val());
  else if (a === '--repeats') opt.repeats = Number(val());
  else if (a === '--single') opt.single = Number(val());
  else if (a === '--limit-queries') opt.limitQueries = Number(val());
  else if (a === '--c-bench') opt.cBench = path.resolve(val());
  else if (a === '--no-c') opt.cBench = '';
  else if (a === '--out') opt.out = path.resolve(val());
  else if (a === '--help' || a === '-h') {
    console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 20).join('\n'));
    process.exit(0);
  } else throw new Error(`unknown option ${a} (try --help)`);
}
const command = ['node', path.relative(root, fileURLToPath(import.meta.url)), ...argv].join(' ');
const log = (...m) => console.error(...m);

// ---- data -------------------------------------------------------------------
function readVecs(file, Kind, limit = 0) {
  const buf = fs.readFileSync(file);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dim = dv.getInt32(0, true);
  let n = buf.byteLength / (4 + dim * 4);
  if (!Number.isInteger(n)) throw new Error(`${file} is not texmex rows of ${dim}`);
  if (limit && limit < n) n = limit;
  const data = new Kind(n * dim);
  const src = new Kind(buf.buffer.slice(buf.byteOffset, buf.byteOffset + n * (4 + dim * 4)));
  for (let i = 0; i < n; i++) data.set(src.subarray(i * (dim + 1) + 1, (i + 1) * (dim + 1)), i * dim);
  return { n, dim, data };
}
const metricName = path.basename(opt.data).endsWith('-euclidean') ? 'l2' : 'cosine';
const base = readVecs(path.join(opt.data, 'base.fvecs'), Float32Array);
const query = readVecs(path.join(opt.data, 'query.fvecs'), Float32Array, opt.limitQueries);
const gt = readVecs(path.join(opt.data, 'gt.ivecs'), Int32Array, opt.limitQueries);
const gtDist = readVecs(path.join(opt.data, 'gt_dist.fvecs'), Float32Array, opt.limitQueries);
const { dim } = base;
const nq = query.n;
const K = opt.k;
log(`data ${opt.data}: ${base.n} x ${dim} base, ${nq} queries, ${metricName}`);

function trueDistance(q, b) {
  let s = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < dim; i++) {
    s += q[i] * b[i];
    na += q[i] * q[i];
    nb += b[i] * b[i];
  }
  if (metricName === 'l2') {
    let d = 0;
    for (let i = 0; i < dim; i++) d += (q[i] - b[i]) ** 2;
    return Math.sqrt(d);
  }
  return na === 0 || nb === 0 ? 1 : 1 - s / (Math.sqrt(na) * Math.sqrt(nb));
}

/** Tie-aware recall@k, as bench_hits_at_k() in bench/datasets.c. ids: nq * K, counts per row. */
function recall(ids, counts) {
  let hits = 0;
  for (let qi = 0; qi < nq; qi++) {
    const truth = new Set(gt.data.subarray(qi * gt.dim, qi * gt.dim + K));
    const kth = gtDist.data[qi * gtDist.dim + K - 1];
    const limit = kth + 1e-6 * (1 + Math.abs(kth));
    const seen = new Set();
    const q = query.data.subarray(qi * dim, (qi + 1) * dim);
    for (let j = 0; j < Math.min(Number(counts[qi]), K); j++) {
      const id = Number(ids[qi * K + j]);
      if (id >= base.n || seen.has(id)) continue;
      seen.add(id);
      if (truth.has(id) || trueDistance(q, base.data.subarray(id * dim, (id + 1) * dim)) <= limit) hits++;
    }
  }
  return hits / (nq * K);
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

// --single calls, cycling over the queries (views made before any timing)
const queryRows = Array.from({ length: opt.single }, (_, i) => query.data.subarray((i % nq) * dim, ((i % nq) + 1) * dim));
const ids = new BigUint64Array(base.n);
for (let i = 0; i < base.n; i++) ids[i] = BigInt(i);
const uptimeBefore = execFileSync('uptime', { encoding: 'utf8' }).trim();
const results = []; // { engine, ef, recall, qps, singleUs }

// ---- builds --------------------------------------------------------------------
const quartz = require(path.join(root, 'bindings', 'node'));
const db = new quartz.Database({ dim, metric: metricName, M: opt.M, efConstruction: opt.efc, threads: opt.threads, capacity: base.n });
{
  const t0 = now();
  db.insertBatch(ids, base.data);
  const build = now() - t0;
  const st = db.stats();
  log(`quartz-node: built ${st.count} in ${build.toFixed(1)} s (simd ${st.simd})`);
  results.push({ engine: 'quartz-node', build });
}

let usearch = null;
let usearchVersion = 'missing';
let usearchFile = '';
const usearchConfig = (ef) => ({
  dimensions: dim,
  metric: metricName === 'l2' ? usearch.MetricKind.L2sq : usearch.MetricKind.Cos,
  quantization: usearch.ScalarKind.F32,
  connectivity: opt.M,
  expansion_add: opt.efc,
  expansion_search: ef,
  multi: false,
});
try {
  usearch = require(path.join(here, 'node_modules', 'usearch'));
  usearchVersion = require(path.join(here, 'node_modules', 'usearch', 'package.json')).version;
} catch (e) {
  log(`usearch: not installed (${e.message}); run npm ci in bench/node`);
}
if (usearch) {
  const index = new usearch.Index(usearchConfig(opt.ef[0]));
  const t0 = now();
  index.add(ids, base.data, opt.threads);
  const build = now() - t0;
  log(`usearch ${usearchVersion}: built ${index.size()} in ${build.toFixed(1)} s`);
  results.push({ engine: 'usearch-node', build });
  // expansion_search is fixed at construction: save once, load into an index per ef
  usearchFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'qz-bench-usearch-')), 'index.usearch');
  index.save(usearchFile);
}

// ---- timed runs: per ef, the engines take turns in every repeat --------------------
// (load from the other users of the machine then falls on both alike)
{
  const hasCalls = 200000;
  let bestHas = Infinity;
  for (let r = 0; r < opt.repeats; r++) {
    const t0 = now();
    for (let i = 0; i < hasCalls; i++) db.has(i);
    bestHas = Math.min(bestHas, now() - t0);
  }
  results.nullCallUs = (bestHas / hasCalls) * 1e6; // one trivial call through the binding
}
const timeIt = (fn) => {
  const t0 = now();
  const out = fn();
  return { s: now() - t0, out };
};
for (const ef of opt.ef) {
  const engines = [{
    name: 'quartz-node',
    batch: () => db.search(query.data, K, { ef }),
    one: (q) => db.search(q, K, { ef }),
    ids: (r) => r.ids,
  }];
  if (usearch) {
    const index = new usearch.Index(usearchConfig(ef));
    index.load(usearchFile);
    engines.push({
      name: 'usearch-node',
      batch: () => index.search(query.data, K, opt.threads),
      one: (q) => index.search(q, K, 1),
      ids: (r) => r.keys,
    });
  }
  for (const e of engines) { // warm-up, untimed
    e.batch();
    for (let i = 0; i < 200; i++) e.one(queryRows[i % queryRows.length]);
    e.bestBatch = Infinity;
    e.bestSingle = Infinity;
  }
  for (let r = 0; r < opt.repeats; r++) {
    for (const e of engines) {
      const b = timeIt(e.batch);
      if (b.s < e.bestBatch) {
        e.bestBatch = b.s;
        e.last = b.out;
      }
      const one = timeIt(() => {
        for (const q of queryRows) e.one(q);
      });
      e.bestSingle = Math.min(e.bestSingle, one.s);
    }
  }
  for (const e of engines) {
    const row = { engine: e.name, ef, recall: recall(e.ids(e.last), e.last.counts), qps: nq / e.bestBatch,
      singleUs: (e.bestSingle / queryRows.length) * 1e6 };
    results.push(row);
    log(`${e.name} ef ${ef}: recall ${row.recall.toFixed(4)} batch ${row.qps.toFixed(0)} QPS, single ${row.singleUs.toFixed(1)} µs`);
  }
}
{
  // the Promise form of the batch, once, at the middle ef
  const efMid = opt.ef[Math.floor(opt.ef.length / 2)];
  const t0 = now();
  await db.searchAsync(query.data, K, { ef: efMid });
  results.asyncQps = { ef: efMid, qps: nq / (now() - t0) };
}
db.close();
if (usearchFile) fs.rmSync(path.dirname(usearchFile), { recursive: true, force: true });

// ---- C: bench_index -------------------------------------------------------------
const cRows = [];
let cCommand = '';
if (opt.cBench && fs.existsSync(opt.cBench)) {
  const args = ['--data', opt.data, '--metric', metricName, '--M', String(opt.M), '--efc', String(opt.efc),
    '--ef', opt.ef.join(','), '--threads', String(opt.threads), '--repeats', String(opt.repeats)];
  if (opt.limitQueries) args.push('--limit-queries', String(opt.limitQueries));
  cCommand = [path.relative(root, opt.cBench), ...args.map((a) => (a === opt.data ? path.relative(root, a) : a))].join(' ');
  log(`C: ${cCommand}`);
  const run = spawnSync(opt.cBench, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 });
  if (run.status !== 0) throw new Error(`bench_index exited ${run.status}`);
  const lines = run.stdout.trim().split('\n');
  const head = lines[0].split(',');
  for (const line of lines.slice(1)) {
    const f = Object.fromEntries(line.split(',').map((v, i) => [head[i], v]));
    cRows.push({ threads: Number(f.threads), ef: Number(f.ef), recall: Number(f.recall_at_10), qps: Number(f.qps),
      p50: Number(f.p50_us), build: Number(f.build_s) });
  }
} else if (opt.cBench) {
  log(`C: ${opt.cBench} not found (ninja -C build); C figures skipped`);
}

// ---- report --------------------------------------------------------------------------
const uptimeAfter = execFileSync('uptime', { encoding: 'utf8' }).trim();
const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || 'unknown';
const fmt = (x, d = 0) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
const q = (e, ef) => results.find((r) => r.engine === e && r.ef === ef);
const c = (t, ef) => cRows.find((r) => r.threads === t && r.ef === ef);
const md = [];
md.push(`# Node binding vs usearch (and C), ${path.basename(opt.data)}`, '');
md.push(`- date: ${new Date().toISOString()}`);
md.push(`- command: \`${command}\` (from the repository root)`);
if (cCommand) md.push(`- C figures: \`${cCommand}\`, run by the same command right after the Node runs`);
md.push(`- machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; **shared** with up to 5 other agents while this ran`);
md.push(`- load: before \`${uptimeBefore}\`; after \`${uptimeAfter}\``);
md.push(`- node ${process.version}; libquartz ${quartz.version} (simd ${quartz.simd}) via bindings/node; usearch ${usearchVersion} (npm, prebuilt)`);
md.push(`- data: ${base.n} base vectors, ${nq} queries, ${dim} dimensions, ${metricName}; k = ${K}; ` +
  `M = connectivity = ${opt.M}, ef_construction = expansion_add = ${opt.efc}; ${opt.threads} threads for builds and batch searches; ` +
  `best of ${opt.repeats} runs; single-query latency over ${queryRows.length} calls (cycling over the queries) on the main thread`);
md.push('');
md.push('## Build');
md.push('');
md.push('| engine | build s |', '|---|---:|');
for (const r of results.filter((r) => r.ef === undefined)) md.push(`| ${r.engine} | ${fmt(r.build, 1)} |`);
if (cRows.length) md.push(`| quartz C (bench_index) | ${fmt(cRows[0].build, 1)} |`);
md.push('');
md.push(`## Batch search (all ${nq} queries in one call, ${opt.threads} threads)`);
md.push('');
md.push('| ef | quartz-node recall | quartz-node QPS | usearch recall | usearch QPS | quartz C recall | quartz C QPS (' +
  `${opt.threads} threads) | node / C | node / usearch |`);
md.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const ef of opt.ef) {
  const a = q('quartz-node', ef);
  const u = q('usearch-node', ef);
  const cc = c(opt.threads, ef);
  md.push(`| ${ef} | ${fmt(a?.recall, 4)} | ${fmt(a?.qps)} | ${fmt(u?.recall, 4)} | ${fmt(u?.qps)} | ${fmt(cc?.recall, 4)} | ` +
    `${fmt(cc?.qps)} | ${cc && a ? fmt(a.qps / cc.qps, 2) : 'n/a'} | ${u && a ? fmt(a.qps / u.qps, 2) : 'n/a'} |`);
}
if (results.asyncQps) md.push('', `searchAsync (Promise, libuv pool) of the same batch at ef ${results.asyncQps.ef}: ${fmt(results.asyncQps.qps)} QPS (one run).`);
md.push('');
md.push('## One 10-NN query per call (main thread)');
md.push('');
md.push(`A trivial call through the binding (\`db.has(id)\`) costs ${fmt(results.nullCallUs, 2)} µs.`);
md.push('C is bench_index with one thread: mean µs per query = 1e6 / QPS (p50 beside it).');
md.push('');
md.push('| ef | quartz-node µs | quartz C µs (p50) | node − C µs | usearch-node µs |');
md.push('|---:|---:|---:|---:|---:|');
for (const ef of opt.ef) {
  const a = q('quartz-node', ef);
  const u = q('usearch-node', ef);
  const cc = c(1, ef);
  const cUs = cc ? 1e6 / cc.qps : undefined;
  md.push(`| ${ef} | ${fmt(a?.singleUs, 1)} | ${cc ? `${fmt(cUs, 1)} (${fmt(cc.p50, 1)})` : 'n/a'} | ` +
    `${cc && a ? fmt(a.singleUs - cUs, 1) : 'n/a'} | ${fmt(u?.singleUs, 1)} |`);
}
md.push('');
const text = md.join('\n') + '\n';
fs.mkdirSync(path.dirname(opt.out), { recursive: true });
fs.writeFileSync(opt.out, text);
process.stdout.write(text);
