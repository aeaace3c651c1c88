'use strict';
// The binding's ordinary behaviour: what index.d.ts declares exists, a batch
// search answers row by row as single searches do, filters, metadata
// encodings, the Promise forms agree with the sync ones, worker threads.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { quartz, dataset, row, tmpdir } = require('./helpers');

const { Database } = quartz;
const dts = fs.readFileSync(path.join(__dirname, '..', 'index.d.ts'), 'utf8');

function classBody(name) {
  const start = dts.indexOf(`export class ${name} `);
  assert.ok(start >= 0, `index.d.ts declares class ${name}`);
  return dts.slice(start, dts.indexOf('\n}\n', start));
}

test('index.d.ts declares what the module exports, and nothing it lacks', () => {
  for (const m of dts.matchAll(/^export (?:const|class) (\w+)/gm)) assert.ok(m[1] in quartz, `export ${m[1]}`);
  for (const name of Object.keys(quartz)) assert.match(dts, new RegExp(`^export (const|class) ${name}\\b`, 'm'), `declared: ${name}`);
  const body = classBody('Database');
  const methods = new Set([...body.matchAll(/^  (\w+)(?:<[^>]*>)?\(/gm)].map((m) => m[1]));
  const statics = new Set([...body.matchAll(/^  static (\w+)\(/gm)].map((m) => m[1]));
  const props = new Set([...body.matchAll(/^  readonly (\w+):/gm)].map((m) => m[1]));
  for (const m of methods) assert.equal(typeof Database.prototype[m], 'function', `Database#${m}`);
  for (const m of statics) assert.equal(typeof Database[m], 'function', `Database.${m}`);
  const own = Object.getOwnPropertyNames(Database.prototype).filter((n) => n !== 'constructor');
  for (const n of own) assert.ok(methods.has(n) || props.has(n), `Database#${n} is declared`);
  for (const p of props) assert.ok(own.includes(p), `Database#${p} exists`);
  const db = new Database({ dim: 3 });
  const stats = db.stats();
  const statsDecl = dts.slice(dts.indexOf('export interface Stats'), dts.indexOf('}', dts.indexOf('export interface Stats')));
  const fields = [...statsDecl.matchAll(/^  (\w+):/gm)].map((m) => m[1]).sort();
  assert.deepEqual(Object.keys(stats).sort(), fields);
  const kvMethods = [...classBody('KeyValueStore').matchAll(/^  (\w+)(?:<[^>]*>)?\(/gm)].map((m) => m[1]);
  for (const m of kvMethods) assert.equal(typeof db.kv[m], 'function', `kv.${m}`);
  db.close();
  for (const name of Object.keys(quartz.codes)) assert.match(dts, new RegExp(`'${name}'`), name);
  assert.equal(quartz.codes.QZ_EDIM, -10);
  assert.equal(quartz.MAX_K, 10000);
  assert.equal(quartz.PAD_ID, 2n ** 64n - 1n);
  assert.match(quartz.version, /^1\.\d+\.\d+$/);
});

test('a batch search answers row by row as single searches do (sync, Promise, filters)', async () => {
  const dim = 24;
  const n = 1500;
  const data = dataset(n, dim, 6, 3);
  const db = new Database({ dim, metric: 'l2', M: 12, efConstruction: 100, threads: 2 });
  db.insertBatch(Array.from({ length: n }, (_, i) => BigInt(i * 3)), data);
  const nq = 40;
  const qs = dataset(nq, dim, 6, 4);
  const k = 7;
  const allowed = new BigUint64Array(Array.from({ length: 300 }, (_, i) => BigInt(((i * 37) % n) * 3)));
  for (const options of [{ ef: 50 }, { ef: 50, filter: allowed }, { ef: 50, filter: Array.from(allowed), exclude: true }]) {
    const b = db.searchBatch(qs, k, options);
    const viaSearch = db.search(qs, k, options);
    const a = await db.searchAsync(qs, k, options);
    assert.deepEqual(viaSearch, b);
    assert.deepEqual(a, b);
    const set = new Set(allowed);
    for (let i = 0; i < nq; i++) {
      const one = db.search(row(qs, dim, i), k, options);
      assert.equal(b.counts[i], one.ids.length);
      assert.deepEqual(b.ids.subarray(i * k, i * k + one.ids.length), one.ids);
      assert.deepEqual(b.distances.subarray(i * k, i * k + one.ids.length), one.distances);
      for (const id of one.ids) {
        if (options.filter && !options.exclude) assert.ok(set.has(id));
        if (options.exclude) assert.ok(!set.has(id));
      }
    }
  }
  // several Promise forms at once on one handle
  const all = await Promise.all([1, 2, 3, 4].map(() => db.searchAsync(qs, k, { ef: 50 })));
  for (const r of all) assert.deepEqual(r, db.searchBatch(qs, k, { ef: 50 }));
  // an empty filter accepts nothing
  assert.equal(db.search(row(qs, dim, 0), k, { filter: [] }).ids.length, 0);
  db.close();
});

test('metadata and values keep their bytes; encodings decode them', () => {
  const db = new Database({ dim: 2, metric: 'l2' });
  const bytes = Buffer.from([0, 255, 1, 2]);
  db.insert(1, new Float32Array([1, 0]), bytes);
  db.insert(2, new Float32Array([0, 1]), 'naïve ☃');
  db.insert(3, new Float32Array([1, 1]), { a: [1, 2], b: 'c' });
  db.insert(4, new Float32Array([2, 1]));
  db.insert(5, new Float32Array([2, 2]), new Uint8Array([9, 8]).buffer);
  assert.deepEqual(db.get(1).metadata, bytes);
  assert.equal(db.get(2, { metadata: 'string' }).metadata, 'naïve ☃');
  assert.deepEqual(db.get(3, { metadata: 'json' }).metadata, { a: [1, 2], b: 'c' });
  assert.equal(db.get(4).metadata, null);
  assert.deepEqual(db.get(5).metadata, Buffer.from([9, 8]));
  assert.deepEqual(db.get(1).vector, new Float32Array([1, 0]));
  assert.throws(() => db.get(2, { metadata: 'json' }), SyntaxError);
  db.close();
});

test('a directory written through Promise forms reopens with everything, in memory and on disk alike', async (t) => {
  const dir = path.join(tmpdir(t), 'db');
  const dim = 8;
  const data = dataset(300, dim, 3, 8);
  const db = await Database.open(dir, { dim, metric: 'cosine', durability: 'sync' });
  await db.insertBatchAsync(Array.from({ length: 300 }, (_, i) => i + 1), data, { metadata: Array.from({ length: 300 }, (_, i) => `v${i + 1}`) });
  db.kv.set('model', 'minilm');
  db.setParam('checkpointWrites', 100);
  await db.flushAsync();
  const before = db.searchBatch(data.subarray(0, 10 * dim), 5);
  await db.closeAsync();
  const again = new Database(dir, { readonly: true });
  assert.equal(again.size, 300);
  assert.equal(again.metric, 'cosine');
  assert.equal(again.get(17, { metadata: 'string' }).metadata, 'v17');
  assert.equal(again.kv.get('model', { encoding: 'string' }), 'minilm');
  assert.deepEqual(again.searchBatch(data.subarray(0, 10 * dim), 5).ids, before.ids);
  assert.equal(again.stats().openReinserted, 0);
  again.close();
});

test('the addon loads in worker threads, each with its own databases', async () => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const q = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    const db = new q.Database({ dim: 4, metric: 'l2' });
    for (let i = 0; i < 50; i++) db.insert(i, new Float32Array([i, workerData, 0, 1]));
    let err = null;
    try { db.insert(1, new Float32Array(3)); } catch (e) { err = [e instanceof q.QuartzError, e.code]; }
    db.searchAsync(new Float32Array([10, workerData, 0, 1]), 1).then((r) => {
      parentPort.postMessage({ id: Number(r.ids[0]), err, size: db.size });
      db.close();
    });`;
  const runs = [1, 2, 3].map(
    (w) =>
      new Promise((resolve, reject) => {
        const worker = new Worker(code, { eval: true, workerData: w });
        worker.once('message', resolve);
        worker.once('error', reject);
      }),
  );
  for (const r of await Promise.all(runs)) assert.deepEqual(r, { id: 10, err: [true, 'QZ_EDIM'], size: 50 });
});

test('the five-line example at the top of README.md runs as printed', (t) => {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  const block = readme.match(/```js\n([\s\S]*?)```/)[1];
  assert.equal(block.trim().split('\n').length, 5);
  const dir = path.join(tmpdir(t), 'vectors');
  const code = block
    .replace("require('quartzdb')", `require(${JSON.stringify(path.resolve(__dirname, '..'))})`)
    .replace("'./vectors'", JSON.stringify(dir));
  const run = new Function('require', `${code}\nreturn { ids, distances, db };`);
  const { ids, distances, db } = run(require);
  assert.equal(ids[0], 1n);
  assert.ok(distances[0] < 0.01);
  assert.equal(db.closed, true);
  assert.ok(fs.existsSync(path.join(dir, 'data.mdb')));
});

test('quantized directories keep their originals in memory or in storage, with exact distances either way', (t) => {
  const dim = 16;
  const n = 500;
  const data = dataset(n, dim, 5, 21);
  const mem = {};
  for (const originals of ['memory', 'storage']) {
    const db = new Database(path.join(tmpdir(t), originals), { dim, metric: 'l2', dtype: 'int8', originals, durability: 'none' });
    db.insertBatch(Array.from({ length: n }, (_, i) => i), data);
    db.flush();
    assert.equal(db.stats().dtype, 'int8');
    const r = db.search(row(data, dim, 7), 5);
    assert.equal(Number(r.ids[0]), 7);
    for (let j = 0; j < 5; j++) {
      const v = row(data, dim, Number(r.ids[j]));
      let d = 0;
      for (let i = 0; i < dim; i++) d += (v[i] - data[7 * dim + i]) ** 2;
      assert.ok(Math.abs(r.distances[j] - d) < 1e-4 * (1 + d), `distance ${j} is exact`);
    }
    assert.deepEqual(Array.from(db.get(123).vector), Array.from(row(data, dim, 123)));
    mem[originals] = db.stats().memoryBytes;
    db.close();
  }
  assert.ok(mem.storage + n * dim * 4 <= mem.memory + n * 16, `memory ${mem.storage} vs ${mem.memory}`);
  assert.throws(() => new Database({ dim, dtype: 'int8', originals: 'storage' }), /in-memory/);
  assert.throws(() => new Database(path.join(tmpdir(t), 'f32'), { dim, originals: 'storage' }), /QZ_OPEN_ORIGINALS_IN_STORAGE/);
  assert.throws(() => new Database(path.join(tmpdir(t), 'x'), { dim, dtype: 'int9' }), /dtype/);
});
