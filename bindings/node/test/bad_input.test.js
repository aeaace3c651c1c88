'use strict';
// The bad-input tests of the C suite (tests/api/test_bad_input.c, plus the
// corrupt-directory, M = 2, edge-value and churn cases of test_corrupt.c,
// test_k_all.c, test_edge_vectors.c and test_churn.c), through the binding:
// a wrong JS type is a TypeError, every bad value a QuartzError with the
// code and message of libquartz, a Promise form rejects with the same
// error, and the stored data is left exactly as it was.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { quartz, dataset, row, tmpdir, fixture, DIM, N, isQuartz, isType } = require('./helpers');

const { Database } = quartz;

function ones(dim, value = 1) {
  return new Float32Array(dim).fill(value);
}

test('wrong JS types are TypeErrors and change nothing', (t) => {
  const f = fixture(t);
  const { db } = f;
  const v = ones(DIM);
  assert.throws(() => db.insert('9999', v), isType(/id must be a bigint or a number, got string/));
  assert.throws(() => db.insert(9999, Array.from(v)), isType(/vector must be a Float32Array, got Array/));
  assert.throws(() => db.insert(9999, new Float64Array(DIM)), isType(/Float32Array, got Float64Array/));
  assert.throws(() => db.insert(9999, v, 42), isType(/metadata must be a Buffer/));
  assert.throws(() => db.insert(9999), isType());
  assert.throws(() => db.upsert({}, v), isType());
  assert.throws(() => db.search([1, 2, 3], 10), isType(/query must be a Float32Array/));
  assert.throws(() => db.search(v, '10'), isType(/k must be a number/));
  assert.throws(() => db.search(v), isType(/k must be a number, got nothing/));
  assert.throws(() => db.search(v, 10, { ef: '64' }), isType(/options.ef/));
  assert.throws(() => db.search(v, 10, 64), isType(/search options must be an object/));
  assert.throws(() => db.search(v, 10, { filter: new Uint32Array([1]) }), isType(/options.filter/));
  assert.throws(() => db.searchBatch(v, null), isType());
  assert.throws(() => db.insertBatch(new Uint32Array([1, 2]), ones(2 * DIM)), isType(/ids must be a BigUint64Array/));
  assert.throws(() => db.insertBatch(new BigUint64Array([1n, 2n]), new Float64Array(2 * DIM)), isType(/vectors must be a Float32Array/));
  assert.throws(() => db.insertBatch([1n, 'x'], ones(2 * DIM)), isType(/ids\[1\]/));
  assert.throws(() => db.insertBatch([1n, 2n], ones(2 * DIM), { upsert: 1 }), isType(/options.upsert/));
  assert.throws(() => db.get('1'), isType());
  assert.throws(() => db.delete(null), isType());
  assert.throws(() => db.has(undefined), isType());
  assert.throws(() => db.kvPut(42, 'x'), isType(/key must be/));
  assert.throws(() => db.kvPut('k', 42), isType(/value must be/));
  assert.throws(() => db.kv.get({ a: 1 }), isType(/key must be/));
  assert.throws(() => db.setParam(1, 2), isType());
  assert.throws(() => new Database(42), isType(/path must be a string/));
  assert.throws(() => new Database({ dim: '16' }), isType(/options.dim must be a number/));
  assert.throws(() => new Database({ dim: 16, metric: 2 }), isType(/options.metric/));
  assert.throws(() => new Database({ dim: 16, readonly: 'yes' }), isType(/options.readonly/));
  assert.throws(() => Database({ dim: 16 }), isType(/without 'new'/));
  assert.throws(() => Database.prototype.search.call({}, v, 1), isType(/Illegal invocation|not a Database/));
  f.assertUnchanged();
});

test('numbers an argument cannot hold are RangeErrors', (t) => {
  const f = fixture(t);
  const v = ones(DIM);
  for (const id of [-1, 1.5, 2 ** 53, NaN, Infinity, -1n, 2n ** 64n]) {
    assert.throws(() => f.db.insert(id, v), (e) => e instanceof RangeError && /id must be/.test(e.message), String(id));
  }
  assert.throws(() => f.db.search(v, -3), RangeError);
  assert.throws(() => f.db.search(v, 2.5), RangeError);
  f.assertUnchanged();
  // the largest id is fine
  const db = new Database({ dim: DIM });
  db.insert(2n ** 64n - 1n, v);
  assert.equal(db.has(0xffffffffffffffffn), true);
  assert.deepEqual(db.search(v, 1).ids, new BigUint64Array([quartz.PAD_ID]));
  db.delete(quartz.PAD_ID);
  assert.equal(db.size, 0);
  db.close();
});

test('bad option values are QuartzErrors: unknown keys, names, ranges', (t) => {
  assert.throws(() => new Database({ dim: 16, dimension: 3 }), isQuartz('QZ_EINVAL', "unknown option 'dimension' in open options"));
  assert.throws(() => new Database({ dim: 16, metric: 'manhattan' }), isQuartz('QZ_EINVAL', /options.metric is 'manhattan'; use one of cosine, l2, ip, hamming/));
  assert.throws(() => new Database({ dim: 0 }), isQuartz('QZ_EINVAL', /dimensions is required/));
  assert.throws(() => new Database({}), isQuartz('QZ_EINVAL', /dimensions is required/));
  assert.throws(() => new Database({ dim: quartz.MAX_DIMENSIONS + 1 }), isQuartz('QZ_ERANGE'));
  assert.throws(() => new Database({ dim: 16, M: 1 }), isQuartz('QZ_ERANGE'));
  assert.throws(() => new Database({ dim: 16, M: quartz.MAX_M + 1 }), isQuartz('QZ_ERANGE'));
  assert.throws(() => new Database({ dim: 16, efConstruction: quartz.MAX_EF + 1 }), isQuartz('QZ_ERANGE'));
  assert.throws(() => new Database(''), isQuartz('QZ_EINVAL', /path is empty/));
  assert.throws(() => new Database('a\0b', { dim: 4 }), isQuartz('QZ_EINVAL', /NUL/));
  const f = fixture(t);
  const v = row(f.data, DIM, 0);
  assert.throws(() => f.db.search(v, 5, { eff: 10 }), isQuartz('QZ_EINVAL', "unknown option 'eff' in search options"));
  assert.throws(() => f.db.insertBatch([1n], ones(DIM), { metadata: ['a', 'b'] }), isQuartz('QZ_EINVAL', /2 entries for 1 rows/));
  assert.throws(() => f.db.setParam('efSearch', 0), isQuartz('QZ_ERANGE'));
  assert.throws(() => f.db.setParam('efSearch', quartz.MAX_EF + 1), isQuartz('QZ_ERANGE'));
  assert.throws(() => f.db.setParam('nope', 1), isQuartz('QZ_EINVAL', /unknown parameter 'nope'/));
  assert.throws(() => f.db.get(1, { metadata: 'base64' }), isQuartz('QZ_EINVAL', /use 'buffer', 'string' or 'json'/));
  f.assertUnchanged();
});

test('wrong dimension is QZ_EDIM with both numbers in the message', async (t) => {
  const f = fixture(t);
  const { db } = f;
  const v = new Float32Array(DIM + 1);
  v[0] = 1;
  v[1] = 2;
  assert.throws(() => db.insert(9999, v.subarray(0, DIM - 1)), isQuartz('QZ_EDIM', 'vector has 15 dimensions, database expects 16'));
  assert.throws(() => db.upsert(1, v), isQuartz('QZ_EDIM', /17 dimensions/));
  assert.throws(() => db.search(v, 1), isQuartz('QZ_EDIM', /17 dimensions/));
  assert.throws(() => db.searchBatch(v, 1), isQuartz('QZ_EDIM', /17 floats/));
  // two ids, two rows of 15: libquartz names the row length
  assert.throws(() => db.insertBatch(new BigUint64Array([5000n, 5001n]), ones(2 * (DIM - 1))), isQuartz('QZ_EDIM', /15/));
  // rows that do not divide
  assert.throws(() => db.insertBatch(new BigUint64Array([5000n, 5001n]), ones(2 * DIM + 1)), isQuartz('QZ_EDIM', /33 floats/));
  await assert.rejects(db.searchAsync(ones(DIM + 1), 3), isQuartz('QZ_EDIM'));
  await assert.rejects(db.insertBatchAsync([5000n, 5001n], ones(2 * (DIM - 1))), isQuartz('QZ_EDIM'));
  // reopening a directory with other dimensions
  const dir = tmpdir(t);
  new Database(dir, { dim: 4 }).close();
  assert.throws(() => new Database(dir, { dim: 5 }), isQuartz('QZ_EDIM'));
  await assert.rejects(Database.open(dir, { dim: 5 }), isQuartz('QZ_EDIM'));
  assert.equal(db.has(5000), false);
  f.assertUnchanged();
});

test('NaN and infinity are QZ_ENONFINITE and name the component', async (t) => {
  const f = fixture(t);
  const v = ones(DIM);
  v[7] = NaN;
  assert.throws(() => f.db.insert(9999, v), isQuartz('QZ_ENONFINITE', /component 7 is NaN/));
  v[7] = Infinity;
  assert.throws(() => f.db.upsert(3, v), isQuartz('QZ_ENONFINITE', /infinite/));
  v[7] = -Infinity;
  assert.throws(() => f.db.search(v, 3), isQuartz('QZ_ENONFINITE'));
  const batch = new Float32Array(3 * DIM).fill(1);
  batch[2 * DIM + 5] = NaN;
  assert.throws(() => f.db.searchBatch(batch, 3), isQuartz('QZ_ENONFINITE', /row 2 component 5 is NaN/));
  await assert.rejects(f.db.searchAsync(batch, 3), isQuartz('QZ_ENONFINITE', /row 2/));
  assert.equal(f.db.has(9999), false);
  f.assertUnchanged();
});

test('a zero vector under cosine is QZ_EZEROVEC, fine under l2', (t) => {
  const f = fixture(t);
  const z = new Float32Array(DIM);
  assert.throws(() => f.db.insert(9999, z), isQuartz('QZ_EZEROVEC'));
  assert.throws(() => f.db.upsert(4, z), isQuartz('QZ_EZEROVEC'));
  assert.throws(() => f.db.search(z, 3), isQuartz('QZ_EZEROVEC'));
  f.assertUnchanged();
  const l2 = new Database({ dim: 4, metric: 'l2', M: 8, efConstruction: 16 });
  l2.insert(1, new Float32Array(4));
  assert.deepEqual(l2.search(new Float32Array(4), 1).ids, new BigUint64Array([1n]));
  l2.close();
});

test('k = 0 or above MAX_K, and ef above MAX_EF, are QZ_ERANGE', async (t) => {
  const f = fixture(t);
  const q = row(f.data, DIM, 0);
  assert.throws(() => f.db.search(q, 0), isQuartz('QZ_ERANGE', /k is 0/));
  assert.throws(() => f.db.search(q, quartz.MAX_K + 1), isQuartz('QZ_ERANGE'));
  assert.throws(() => f.db.search(q, 1, { ef: quartz.MAX_EF + 1 }), isQuartz('QZ_ERANGE'));
  assert.throws(() => f.db.searchBatch(f.data.subarray(0, 4 * DIM), 1, { ef: quartz.MAX_EF + 1 }), isQuartz('QZ_ERANGE'));
  await assert.rejects(f.db.searchAsync(q, 0), isQuartz('QZ_ERANGE'));
  await assert.rejects(f.db.searchAsync(q, 1, { ef: quartz.MAX_EF + 1 }), isQuartz('QZ_ERANGE'));
  f.assertUnchanged();
});

test('k above the live count returns all of them, sorted; batch rows are padded', async (t) => {
  const f = fixture(t);
  const res = f.db.search(row(f.data, DIM, 0), 1000);
  assert.equal(res.ids.length, N);
  assert.equal(new Set(res.ids).size, N);
  for (let i = 1; i < N; i++) assert.ok(res.distances[i - 1] <= res.distances[i]);
  const b = await f.db.searchAsync(f.data.subarray(0, 2 * DIM), 300);
  assert.deepEqual(Array.from(b.counts), [N, N]);
  assert.equal(b.ids.length, 600);
  for (const r of [0, 1]) {
    for (let j = N; j < 300; j++) {
      assert.equal(b.ids[r * 300 + j], quartz.PAD_ID);
      assert.equal(b.distances[r * 300 + j], Infinity);
    }
  }
  assert.deepEqual(b.ids.subarray(0, N), res.ids);
});

test('a duplicate id on insert is QZ_EEXISTS and keeps the old vector and metadata', (t) => {
  const f = fixture(t);
  assert.throws(() => f.db.insert(5, ones(DIM, -1), 'new'), isQuartz('QZ_EEXISTS'));
  const got = f.db.get(5, { metadata: 'string' });
  assert.equal(got.metadata, 'm');
  assert.ok(got.vector[0] * f.data[5 * DIM] > 0); // same sign: the old vector, normalised
  f.assertUnchanged();
});

test('an unknown id on get or delete is QZ_ENOTFOUND naming the id', (t) => {
  const f = fixture(t);
  assert.throws(() => f.db.get(123456), isQuartz('QZ_ENOTFOUND'));
  assert.throws(() => f.db.delete(123456), isQuartz('QZ_ENOTFOUND', /123456/));
  assert.throws(() => f.db.delete(123456n), isQuartz('QZ_ENOTFOUND', /123456/));
  assert.equal(f.db.has(123456), false);
  f.assertUnchanged();
});

test('a delete of several ids with one unknown deletes none of them', (t) => {
  const f = fixture(t);
  assert.throws(() => f.db.delete([3n, 4n, 123456n, 5n]), isQuartz('QZ_ENOTFOUND', /123456/));
  assert.throws(() => f.db.delete(new BigUint64Array([7n, 7n])), isQuartz('QZ_ENOTFOUND', /id 7/));
  assert.throws(() => f.db.delete([1n, -2]), RangeError);
  assert.throws(() => f.db.delete(new Float32Array([1])), isType(/ids must be a BigUint64Array/));
  for (const id of [3, 4, 5, 7]) assert.equal(f.db.has(id), true);
  f.db.delete([]);
  f.assertUnchanged();
  f.db.delete(new BigUint64Array([3n, 4n]));
  assert.equal(f.db.size, N - 2);
  assert.equal(f.db.has(3), false);
});

test('a batch with one bad row inserts nothing (sync and Promise forms)', async (t) => {
  const f = fixture(t);
  const B = 50;
  const rows = dataset(B, DIM, 0, 99);
  const ids = new BigUint64Array(B);
  for (let i = 0; i < B; i++) ids[i] = BigInt(10000 + i);
  rows[37 * DIM + 3] = NaN;
  assert.throws(() => f.db.insertBatch(ids, rows), isQuartz('QZ_ENONFINITE', /row 37/));
  await assert.rejects(f.db.insertBatchAsync(ids, rows), isQuartz('QZ_ENONFINITE', /row 37/));
  rows[37 * DIM + 3] = 0.5;
  ids[40] = ids[12];
  assert.throws(() => f.db.insertBatch(ids, rows), isQuartz('QZ_EEXISTS', /rows 12 and 40/));
  await assert.rejects(f.db.insertBatchAsync(ids, rows), isQuartz('QZ_EEXISTS', /rows 12 and 40/));
  ids[40] = 7n; // exists in the database
  assert.throws(() => f.db.insertBatch(ids, rows), isQuartz('QZ_EEXISTS'));
  ids[40] = 10040n;
  const metas = new Array(B).fill(null);
  metas[3] = 12;
  assert.throws(() => f.db.insertBatch(ids, rows, { metadata: metas }), isType(/options.metadata\[3\]/));
  metas[3] = Buffer.alloc(quartz.MAX_METADATA + 1);
  assert.throws(() => f.db.insertBatch(ids, rows, { metadata: metas }), isQuartz('QZ_ERANGE'));
  for (let i = 0; i < B; i++) assert.equal(f.db.has(ids[i]), false);
  f.assertUnchanged();
  // the same batch, corrected, goes in whole
  await f.db.insertBatchAsync(ids, rows);
  assert.equal(f.db.size, N + B);
});

test('oversized metadata is QZ_ERANGE; large metadata comes back whole', (t) => {
  const f = fixture(t);
  assert.throws(() => f.db.insert(9999, row(f.data, DIM, 1), Buffer.alloc(quartz.MAX_METADATA + 1)), isQuartz('QZ_ERANGE'));
  f.assertUnchanged();
  const big = Buffer.alloc(100000, 'x');
  big[99999] = 0x79;
  f.db.upsert(77, row(f.data, DIM, 77), big);
  assert.deepEqual(f.db.get(77).metadata, big);
  f.db.upsert(77, row(f.data, DIM, 77), { title: 'json ok', n: 3 });
  assert.deepEqual(f.db.get(77, { metadata: 'json' }).metadata, { title: 'json ok', n: 3 });
  f.db.upsert(77, row(f.data, DIM, 77), 'm'); // as the fixture had it
  f.db.compact();
  assert.equal(f.db.get(77, { metadata: 'string' }).metadata, 'm');
});

test('a closed database refuses every call with QZ_EINVAL; close is idempotent', async () => {
  const db = new Database({ dim: 4, metric: 'l2' });
  db.insert(1, ones(4));
  db.close();
  db.close();
  assert.equal(db.closed, true);
  const v = ones(4);
  const closed = isQuartz('QZ_EINVAL', 'database is closed');
  assert.throws(() => db.insert(2, v), closed);
  assert.throws(() => db.upsert(2, v), closed);
  assert.throws(() => db.delete(1), closed);
  assert.throws(() => db.get(1), closed);
  assert.throws(() => db.has(1), closed);
  assert.throws(() => db.search(v, 1), closed);
  assert.throws(() => db.searchBatch(v, 1), closed);
  assert.throws(() => db.insertBatch([2n], v), closed);
  assert.throws(() => db.stats(), closed);
  assert.throws(() => db.flush(), closed);
  assert.throws(() => db.compact(), closed);
  assert.throws(() => db.check(), closed);
  assert.throws(() => db.setParam('efSearch', 10), closed);
  assert.throws(() => db.kvPut('k', 'v'), closed);
  assert.throws(() => db.kvGet('k'), closed);
  assert.throws(() => db.kvScan(), closed);
  assert.throws(() => db.kv, closed);
  assert.throws(() => db.size, closed);
  await assert.rejects(db.searchAsync(v, 1), closed);
  await assert.rejects(db.insertBatchAsync([2n], v), closed);
  await assert.rejects(db.flushAsync(), closed);
  await db.closeAsync(); // resolves: already closed
});

test('close while a Promise form runs is QZ_EBUSY; closeAsync after it works', async () => {
  const db = new Database({ dim: 32, metric: 'l2', threads: 1 });
  const n = 4000;
  const ids = new BigUint64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(i);
  const p = db.insertBatchAsync(ids, dataset(n, 32, 8, 5));
  assert.throws(() => db.close(), isQuartz('QZ_EBUSY', /1 asynchronous call/));
  await assert.rejects(db.closeAsync(), isQuartz('QZ_EBUSY'));
  await p;
  assert.equal(db.size, n);
  await db.closeAsync();
  assert.equal(db.closed, true);
});

test('Promise forms run off the main thread', async () => {
  const dim = 64;
  const n = 3000;
  const db = new Database({ dim, metric: 'l2', M: 8, efConstruction: 64, threads: 1 });
  const data = dataset(n, dim, 16, 21);
  const ids = new BigUint64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(i);
  // The build takes far longer than one turn of the event loop: while it
  // runs on the pool, timers keep firing on this thread.
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const t0 = process.hrtime.bigint();
  await db.insertBatchAsync(ids, data);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  clearInterval(timer);
  assert.ok(ms > 20, `the build took ${ms} ms, too short to tell`);
  assert.ok(ticks >= 2, `only ${ticks} timer ticks during a ${ms.toFixed(0)} ms asynchronous build`);
  // inputs were copied: changing them after the call does not matter
  const q = data.slice(0, 100 * dim);
  const p = db.searchAsync(q, 1, { ef: 32 });
  q.fill(NaN);
  const r = await p;
  let self = 0;
  for (let i = 0; i < 100; i++) self += r.ids[i] === BigInt(i);
  assert.ok(self >= 95, `${self} of 100 rows found themselves`);
  db.close();
});

test('a corrupt directory is QZ_ECORRUPT, sync and Promise', async (t) => {
  const root = tmpdir(t);
  const opts = { dim: DIM, metric: 'l2', M: 8, efConstruction: 32 };
  const make = (name) => {
    const dir = path.join(root, name);
    const db = new Database(dir, opts);
    const data = dataset(100, DIM, 2, 3);
    db.insertBatch(Array.from({ length: 100 }, (_, i) => BigInt(i)), data);
    db.kvPut('k', 'v');
    db.close();
    return dir;
  };
  // data.mdb truncated to 0 bytes: not a new empty database
  let dir = make('trunc-zero');
  fs.truncateSync(path.join(dir, 'data.mdb'), 0);
  assert.throws(() => new Database(dir, opts), isQuartz('QZ_ECORRUPT'));
  await assert.rejects(Database.open(dir, opts), isQuartz('QZ_ECORRUPT'));
  // data.mdb deleted
  dir = make('missing');
  fs.unlinkSync(path.join(dir, 'data.mdb'));
  assert.throws(() => new Database(dir, opts), isQuartz('QZ_ECORRUPT'));
  // random bytes over the log header
  dir = make('log-header');
  const fd = fs.openSync(path.join(dir, 'quartz.log'), 'r+');
  const junk = Buffer.from(Array.from({ length: 32 }, (_, i) => (i * 97 + 13) & 0xff));
  fs.writeSync(fd, junk, 0, junk.length, 0);
  fs.closeSync(fd);
  assert.throws(() => new Database(dir), isQuartz('QZ_ECORRUPT'));
  await assert.rejects(Database.open(dir), isQuartz('QZ_ECORRUPT'));
  // an intact copy opens with everything in it
  dir = make('intact');
  const db = await Database.open(dir);
  assert.equal(db.size, 100);
  assert.equal(db.kv.get('k', { encoding: 'string' }), 'v');
  db.check();
  db.close();
});

test('readonly and existing-only opens: QZ_EREADONLY and QZ_ENOTFOUND', async (t) => {
  const root = tmpdir(t);
  const dir = path.join(root, 'db');
  assert.throws(() => new Database(dir, { dim: 4, existing: true }), isQuartz('QZ_ENOTFOUND'));
  assert.equal(fs.existsSync(path.join(dir, 'data.mdb')), false);
  const w = new Database(dir, { dim: 4, metric: 'l2' });
  w.insert(1, ones(4));
  w.close();
  const r = new Database(dir, { readonly: true });
  assert.throws(() => r.insert(2, ones(4)), isQuartz('QZ_EREADONLY'));
  assert.throws(() => r.delete(1), isQuartz('QZ_EREADONLY'));
  assert.throws(() => r.kvPut('k', 'v'), isQuartz('QZ_EREADONLY'));
  await assert.rejects(r.insertBatchAsync([3n], ones(4)), isQuartz('QZ_EREADONLY'));
  assert.deepEqual(r.search(ones(4), 5).ids, new BigUint64Array([1n]));
  r.close();
});

test('a directory held by another process is QZ_EBUSY', async (t) => {
  const dir = path.join(tmpdir(t), 'db');
  new Database(dir, { dim: 4, metric: 'l2' }).close();
  const script = `const q = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    const db = new q.Database(${JSON.stringify(dir)});
    process.stdout.write('open\\n');
    process.stdin.on('data', () => { db.close(); process.exit(0); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => child.kill('SIGKILL'));
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
  assert.throws(() => new Database(dir), isQuartz('QZ_EBUSY'));
  await assert.rejects(Database.open(dir), isQuartz('QZ_EBUSY'));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.stdin.write('close\n');
  assert.equal(await exited, 0);
  const db = new Database(dir); // free again
  db.close();
});

test('M = 2 graphs answer every k with all live vectors reachable', () => {
  for (const metric of ['l2', 'cosine', 'ip']) {
    const db = new Database({ dim: 8, metric, M: 2, efConstruction: 16 });
    const n = 120;
    const data = dataset(n, 8, 3, 7);
    db.insertBatch(Array.from({ length: n }, (_, i) => i), data);
    db.check();
    const all = db.search(row(data, 8, 0), n, { ef: n });
    assert.equal(all.ids.length, n, metric);
    assert.equal(new Set(all.ids).size, n, metric);
    for (let k = 1; k <= 12; k++) assert.equal(db.search(row(data, 8, k), k).ids.length, k, `${metric} k=${k}`);
    db.close();
  }
});

test('tiny and huge components are stored finite and searchable under every metric', () => {
  const FMAX = 3.4028234663852886e38;
  const edge = [
    [3e-41, 0, 0, 0],
    [0, 1e-45, 0, 0],
    [1e-40, -2e-41, 0, 5e-39],
    [-1e-44, 1e-44, -1e-44, 1e-44],
    [1e38, 0, 0, 0],
    [1e38, 1e38, 1e38, 1e38],
    [FMAX, FMAX, -FMAX, FMAX],
    [-FMAX, -FMAX, FMAX, -FMAX],
    [0, 0, 0, -FMAX],
    [1e38, 1e-38, 0, 1],
    [1e-30, 1e30, -1, 0],
  ];
  const normal = dataset(40, 4, 3, 9);
  for (const metric of ['l2', 'cosine', 'ip', 'hamming']) {
    for (const M of [2, 8]) {
      const db = new Database({ dim: 4, metric, M, efConstruction: 32 });
      edge.forEach((e, i) => db.insert(i, new Float32Array(e)));
      db.insertBatch(Array.from({ length: 40 }, (_, i) => 100 + i), normal);
      db.check();
      for (let i = 0; i < edge.length; i++) {
        const v = db.get(i).vector;
        assert.ok(v.every(Number.isFinite), `${metric}: get(${i}) = ${v}`);
        if (metric === 'cosine') assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-6, `${metric}: norm of ${i}`);
        const res = db.search(new Float32Array(edge[i]), 5, { ef: 32 });
        assert.equal(res.ids.length, 5, `${metric} M ${M}: query ${i}`);
        for (let j = 0; j < 5; j++) {
          assert.ok(Number.isFinite(res.distances[j]), `${metric} M ${M}: query ${i} distance ${res.distances[j]}`);
          if (j) assert.ok(res.distances[j] >= res.distances[j - 1]);
        }
      }
      db.close();
    }
  }
});

test('upsert churn keeps one live vector per id, the newest', async () => {
  const dim = 8;
  const ids = 60;
  const rounds = 25;
  const db = new Database({ dim, metric: 'l2', M: 8, efConstruction: 32 });
  const r = dataset(ids * rounds, dim, 0, 41);
  for (let round = 0; round < rounds; round++) {
    const block = r.subarray(round * ids * dim, (round + 1) * ids * dim);
    if (round % 3 === 0) {
      const metadata = Array(ids).fill(`r${round}`);
      await db.insertBatchAsync(Array.from({ length: ids }, (_, i) => i), block, { upsert: true, metadata });
    } else if (round % 3 === 1) {
      db.insertBatch(Array.from({ length: ids }, (_, i) => i), block, { upsert: true, metadata: Array(ids).fill(`r${round}`) });
    } else {
      for (let i = 0; i < ids; i++) db.upsert(i, row(block, dim, i), `r${round}`);
    }
    assert.equal(db.size, ids);
  }
  db.check();
  const last = r.subarray((rounds - 1) * ids * dim);
  for (let i = 0; i < ids; i++) {
    assert.deepEqual(db.get(i).vector, row(last, dim, i));
    assert.equal(db.get(i, { metadata: 'string' }).metadata, `r${rounds - 1}`);
    const hit = db.search(row(last, dim, i), 1, { ef: 64 });
    assert.equal(hit.ids[0], BigInt(i));
    assert.equal(hit.distances[0], 0);
  }
  const all = db.search(row(last, dim, 0), 1000, { ef: 200 });
  assert.equal(all.ids.length, ids);
  assert.equal(new Set(all.ids).size, ids); // an upserted id at most once
  assert.throws(() => db.insertBatch([0n], row(last, dim, 0)), isQuartz('QZ_EEXISTS')); // not upsert
  db.close();
});

test('key-value store: bad keys are QZ_ERANGE, missing keys QZ_ENOTFOUND or undefined', (t) => {
  const f = fixture(t);
  const { db } = f;
  assert.throws(() => db.kvPut('', 'v'), isQuartz('QZ_ERANGE'));
  assert.throws(() => db.kvPut('k'.repeat(quartz.MAX_KEY + 1), 'v'), isQuartz('QZ_ERANGE'));
  assert.throws(() => db.kvPut('k', Buffer.alloc(quartz.MAX_METADATA + 1)), isQuartz('QZ_ERANGE'));
  assert.throws(() => db.kvGet('absent'), isQuartz('QZ_ENOTFOUND'));
  assert.throws(() => db.kvDelete('absent'), isQuartz('QZ_ENOTFOUND'));
  assert.equal(db.kv.get('absent'), undefined);
  assert.equal(db.kv.delete('absent'), false);
  assert.deepEqual([...db.kv], []);
  db.kv.set('a/1', 'one').set('a/2', { two: 2 }).set(Buffer.from([0x62, 0]), Buffer.from([1, 2, 3]));
  assert.equal(db.kv.get('a/1', { encoding: 'string' }), 'one');
  assert.deepEqual(db.kv.get('a/2', { encoding: 'json' }), { two: 2 });
  assert.deepEqual(db.kv.get(Buffer.from([0x62, 0])), Buffer.from([1, 2, 3]));
  assert.deepEqual([...db.kv.keys('a/')], ['a/1', 'a/2']);
  assert.deepEqual([...db.kv.entries('a/', { encoding: 'string' })], [['a/1', 'one'], ['a/2', '{"two":2}']]);
  assert.equal(db.kv.has('a/1'), true);
  assert.equal(db.kv.delete('a/1'), true);
  assert.equal(db.kv.has('a/1'), false);
  f.assertUnchanged(); // the vectors did not move
});
