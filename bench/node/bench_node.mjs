#!/usr/bin/env node
// bench_node.mjs - libquartz through the Node binding (bindings/node), the
// usearch npm package, and libquartz called from C on the very same database,
// in one run on one texmex dataset folder (GloVe by default).
//
// Builds: quartz through the binding (insertBatch into a directory, durability
// 'none', then flushed, closed and reopened read-only) and usearch, with the
// same graph parameters (M = connectivity, ef_construction = expansion_add,
// cosine). The C side is bench/node/qz_search_timer.c, compiled here with cc
// against the meson build's libquartz.a; it opens the same directory
// read-only, so Node and C search an identical graph and must return
// identical ids (checked by a sum of the ids).
// Then, for each ef (= expansion_search), best of --repeats, the engines
// taking turns within every repeat (so load from other users falls on all):
//   batch   every query in one call with k = 10 on --threads threads: db.search(matrix)
//           (qz_db_search_batch underneath), qz_db_search_batch() in C, usearch
//           index.search(matrix, k, threads); QPS and tie-aware recall@10 (as bench/datasets.c);
//   single  --single calls of one query each on the calling thread, in µs per call.
//
// Setup: (cd bench/node && npm ci) for usearch; the addon built (bash
// bindings/node/run-tests.sh BUILD XML, or npm install --offline in bindings/node);
// meson setup build -Dbuildtype=release && ninja -C build.
// Usage: node bench/node/bench_node.mjs [--data DIR] [--build DIR] [--ef 10,20,40,80,120,200,400]
//          [--M 16] [--efc 200] [--threads 2] [--repeats 3] [--single 2000] [--limit-queries N]
//          [--no-usearch] [--out bench/results/node.md]
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
  build: path.join(root, 'build'),
  usearch: true,
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
  else if (a === '--build') opt.build = path.resolve(val());
  else if (a === '--no-usearch') opt.usearch = false;
  else if (a === '--out') opt.out = path.resolve(val());
  else if (a === '--help' || a === '-h') {
    console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1, 26).join('\n'));
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
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'qz-bench-node-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const dbDir = path.join(work, 'quartz');
let db = new quartz.Database(dbDir, { dim, metric: metricName, M: opt.M, efConstruction: opt.efc, threads: opt.threads,
  capacity: base.n, durability: 'none' });
{
  const t0 = now();
  db.insertBatch(ids, base.data);
  const build = now() - t0;
  const st = db.stats();
  log(`quartz-node: built ${st.count} in ${build.toFixed(1)} s (simd ${st.simd})`);
  results.push({ engine: 'quartz-node', build });
  db.close(); // writes the graph snapshot
  db = new quartz.Database(dbDir, { readonly: true, threads: opt.threads });
  if (db.stats().openReinserted !== 0) throw new Error('the reopen re-inserted vectors');
}

// ---- C: qz_search_timer on the same directory ------------------------------------------
const timerBin = path.join(work, 'qz_search_timer');
{
  const libs = execFileSync('node', [path.join(root, 'bindings', 'node', 'scripts', 'find-quartz.js'), 'libs'],
    { encoding: 'utf8', env: { ...process.env, QUARTZ_BUILD_DIR: opt.build } }).trim().split(/\s+/);
  execFileSync('cc', ['-O2', '-std=c11', '-D_GNU_SOURCE', '-o', timerBin, path.join(here, 'qz_search_timer.c'),
    '-I', path.join(root, 'include'), path.join(opt.build, 'lib', 'libquartz.a'), ...libs], { stdio: 'inherit' });
}
const timer = spawn(timerBin, [dbDir, path.join(opt.data, 'query.fvecs'), String(nq), String(opt.threads)],
  { stdio: ['pipe', 'pipe', 'inherit'] });
const timerLines = readline.createInterface({ input: timer.stdout })[Symbol.asyncIterator]();
async function ask(cmd) {
  if (cmd) timer.stdin.write(`${cmd}\n`);
  const { value, done } = await timerLines.next();
  if (done) throw new Error(`qz_search_timer ended (after "${cmd}")`);
  return value.split(' ');
}
{
  const [word] = await ask(null);
  if (word !== 'ready') throw new Error('qz_search_timer did not start');
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
if (opt.usearch) try {
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
  usearchFile = path.join(work, 'index.usearch');
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
const idSum = (r, idsOf) => {
  let sum = 0n;
  const got = idsOf(r);
  for (let i = 0; i < nq; i++) for (let j = 0; j < Number(r.counts[i]); j++) sum += got[i * K + j];
  return sum & 0xffffffffffffffffn;
};
const cpuNow = () => {
  const u = process.cpuUsage(); // this process, every thread
  return (u.user + u.system) / 1e6;
};
const timeSync = (fn) => {
  const t0 = now();
  const c0 = cpuNow();
  const out = fn();
  return { s: now() - t0, cpu: cpuNow() - c0, out };
};
let sameAnswers = true;
for (const ef of opt.ef) {
  const engines = [{
    name: 'quartz-node',
    batch: async () => timeSync(() => db.search(query.data, K, { ef })),
    single: async () => timeSync(() => {
      for (const q of queryRows) db.search(q, K, { ef });
    }),
    ids: (r) => r.ids,
  }, {
    name: 'quartz-c',
    batch: async () => {
      const [, , sec, cpuSec, sum] = await ask(`batch ${ef}`);
      return { s: Number(sec), cpu: Number(cpuSec), out: BigInt(sum) };
    },
    single: async () => {
      const [, , sec, cpuSec] = await ask(`single ${ef} ${queryRows.length}`);
      return { s: Number(sec), cpu: Number(cpuSec) };
    },
  }];
  if (usearch) {
    const index = new usearch.Index(usearchConfig(ef));
    index.load(usearchFile);
    engines.push({
      name: 'usearch-node',
      batch: async () => timeSync(() => index.search(query.data, K, opt.threads)),
      single: async () => timeSync(() => {
        for (const q of queryRows) index.search(q, K, 1);
      }),
      ids: (r) => r.keys,
    });
  }
  for (const e of engines) { // warm-up, untimed
    await e.batch();
    e.bestBatch = Infinity;
    e.bestBatchCpu = Infinity;
    e.bestSingle = Infinity;
    e.bestSingleCpu = Infinity;
  }
  for (let r = 0; r < opt.repeats; r++) {
    for (const e of engines) {
      const b = await e.batch();
      if (b.s < e.bestBatch) {
        e.bestBatch = b.s;
        e.last = b.out;
      }
      e.bestBatchCpu = Math.min(e.bestBatchCpu, b.cpu);
      const one = await e.single();
      e.bestSingle = Math.min(e.bestSingle, one.s);
      e.bestSingleCpu = Math.min(e.bestSingleCpu, one.cpu);
    }
  }
  const nodeSum = idSum(engines[0].last, engines[0].ids);
  if (nodeSum !== engines[1].last) {
    sameAnswers = false;
    log(`ef ${ef}: Node and C returned different ids (sums ${nodeSum} and ${engines[1].last})`);
  }
  for (const e of engines) {
    const row = { engine: e.name, ef, recall: e.ids ? recall(e.ids(e.last), e.last.counts) : undefined, qps: nq / e.bestBatch,
      cpuQps: nq / e.bestBatchCpu, singleUs: (e.bestSingle / queryRows.length) * 1e6,
      singleCpuUs: (e.bestSingleCpu / queryRows.length) * 1e6 };
    results.push(row);
    log(`${e.name} ef ${ef}: recall ${row.recall === undefined ? 'as quartz-node' : row.recall.toFixed(4)} ` +
      `batch ${row.qps.toFixed(0)} QPS (${row.cpuQps.toFixed(0)} per CPU-s), single ${row.singleUs.toFixed(1)} µs ` +
      `(${row.singleCpuUs.toFixed(1)} µs CPU)`);
  }
}
await ask('quit').catch(() => {});
{
  // the Promise form of the batch, once, at the middle ef
  const efMid = opt.ef[Math.floor(opt.ef.length / 2)];
  const t0 = now();
  await db.searchAsync(query.data, K, { ef: efMid });
  results.asyncQps = { ef: efMid, qps: nq / (now() - t0) };
}
db.close();

// ---- report --------------------------------------------------------------------------
const uptimeAfter = execFileSync('uptime', { encoding: 'utf8' }).trim();
const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) || [])[1] || 'unknown';
const fmt = (x, d = 0) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(d));
const q = (e, ef) => results.find((r) => r.engine === e && r.ef === ef);
const md = [];
md.push(`# Node binding vs usearch and C, ${path.basename(opt.data)}`, '');
md.push(`- date: ${new Date().toISOString()}`);
md.push(`- command: \`${command}\` (from the repository root)`);
md.push(`- machine: ${cpu}, ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB; **shared** with up to 5 other agents ` +
  'running builds, tests and benchmarks while this ran: absolute figures are well below a quiet machine\'s; the ratios, ' +
  'from engines taking turns within each repeat, are the result');
md.push(`- load: before \`${uptimeBefore}\`; after \`${uptimeAfter}\``);
md.push(`- node ${process.version}; libquartz ${quartz.version} (simd ${quartz.simd}): bindings/node and, in C, ` +
  `bench/node/qz_search_timer.c on the same directory; usearch ${usearchVersion} (npm, prebuilt binary)`);
md.push(`- data: ${base.n} base vectors, ${nq} queries, ${dim} dimensions, ${metricName}; k = ${K}; ` +
  `M = connectivity = ${opt.M}, ef_construction = expansion_add = ${opt.efc}; ${opt.threads} threads for builds and batch searches; ` +
  `best of ${opt.repeats}; single-query latency over ${queryRows.length} calls (cycling over the queries) on the calling thread`);
md.push(`- Node and C returned identical ids at every ef: ${sameAnswers ? 'yes' : '**no**'} (sum of the ids of each batch)`);
md.push('');
md.push('## Build');
md.push('');
md.push('| engine | build s |', '|---|---:|');
for (const r of results.filter((r) => r.ef === undefined)) {
  md.push(`| ${r.engine}${r.engine === 'quartz-node' ? ' (insertBatch into a directory, durability none)' : ''} | ${fmt(r.build, 1)} |`);
}
md.push('');
md.push(`## Batch search (all ${nq} queries in one call, ${opt.threads} threads)`);
md.push('');
md.push('QPS is wall-clock; "per CPU-s" is queries per second of CPU time of the process (all its threads), ' +
  'which other users of the machine do not inflate. Best of the repeats for each.');
md.push('');
md.push('| ef | quartz recall@10 | quartz-node QPS | quartz C QPS | node / C | quartz-node per CPU-s | quartz C per CPU-s | node / C (CPU) | ' +
  'usearch recall@10 | usearch-node QPS | usearch per CPU-s | quartz-node / usearch (QPS) |');
md.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const ef of opt.ef) {
  const a = q('quartz-node', ef);
  const cc = q('quartz-c', ef);
  const u = q('usearch-node', ef);
  md.push(`| ${ef} | ${fmt(a?.recall, 4)} | ${fmt(a?.qps)} | ${fmt(cc?.qps)} | ${cc && a ? fmt(a.qps / cc.qps, 2) : 'n/a'} | ` +
    `${fmt(a?.cpuQps)} | ${fmt(cc?.cpuQps)} | ${cc && a ? fmt(a.cpuQps / cc.cpuQps, 2) : 'n/a'} | ` +
    `${fmt(u?.recall, 4)} | ${fmt(u?.qps)} | ${fmt(u?.cpuQps)} | ${u && a ? fmt(a.qps / u.qps, 2) : 'n/a'} |`);
}
if (results.asyncQps) md.push('', `searchAsync (Promise, libuv pool) of the same batch at ef ${results.asyncQps.ef}: ${fmt(results.asyncQps.qps)} QPS (one run).`);
md.push('');
md.push('## One 10-NN query per call (calling thread)');
md.push('');
md.push(`A trivial call through the binding (\`db.has(id)\`) costs ${fmt(results.nullCallUs, 2)} µs (wall).`);
md.push('CPU µs: CPU time per call of the process, less inflated by the other users than wall-clock time, but not immune: under this load the node − C column is noise of tens of µs; overhead.mjs below measures the per-call cost where the search itself is short.');
md.push('');
md.push('| ef | quartz-node µs CPU | quartz C µs CPU | node − C µs CPU | usearch-node µs CPU | quartz-node µs wall | quartz C µs wall | usearch-node µs wall |');
md.push('|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const ef of opt.ef) {
  const a = q('quartz-node', ef);
  const cc = q('quartz-c', ef);
  const u = q('usearch-node', ef);
  md.push(`| ${ef} | ${fmt(a?.singleCpuUs, 1)} | ${fmt(cc?.singleCpuUs, 1)} | ${cc && a ? fmt(a.singleCpuUs - cc.singleCpuUs, 1) : 'n/a'} | ` +
    `${fmt(u?.singleCpuUs, 1)} | ${fmt(a?.singleUs, 1)} | ${fmt(cc?.singleUs, 1)} | ${fmt(u?.singleUs, 1)} |`);
}
md.push('');
const text = md.join('\n') + '\n';
fs.mkdirSync(path.dirname(opt.out), { recursive: true });
fs.writeFileSync(opt.out, text);
process.stdout.write(text);
