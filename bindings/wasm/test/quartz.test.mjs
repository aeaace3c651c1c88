// node --test tests of QuartzIndex (bindings/wasm/quartz.mjs) and the
// in-memory JS map backend, on the real wasm build. QZ_WASM_DIR names the
// folder holding quartz_wasm.mjs and quartz_wasm.wasm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadQuartzNode, MapStore, QuartzError, Status } from '../quartz-node.mjs';

const dir = process.env.QZ_WASM_DIR;
if (!dir) throw new Error('set QZ_WASM_DIR to BUILD/bindings/wasm');
const qz = await loadQuartzNode(dir);
const td = new TextDecoder();

function rng(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}
function randVecs(n, d, seed = 1) {
  const r = rng(seed), a = new Float32Array(n * d);
  for (let i = 0; i < a.length; i++) a[i] = r() * 2 - 1;
  return a;
}
function throwsCode(fn, code, re) {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof QuartzError, `expected a QuartzError, got ${e}`);
    assert.equal(e.code, code, `code ${e.code} (${e.message}), expected ${code}`);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected QuartzError ${code}`);
}

test('module: simd128 kernels and a version', () => {
  assert.equal(qz.simd, 'simd128');
  assert.match(qz.version, /^\d+\.\d+\.\d+/);
});

test('insert, search, get, delete, stats in memory', () => {
  const d = 16, n = 500, v = randVecs(n, d, 7);
  const ix = qz.open(null, { dimensions: d, metric: 'l2' });
  for (let i = 0; i < n; i++) ix.insert(BigInt(i), v.subarray(i * d, (i + 1) * d), i % 2 ? `{"i":${i}}` : null);
  assert.equal(ix.stats().count, n);
  let self = 0;
  for (let i = 0; i < 100; i++) {
    const r = ix.search(v.subarray(i * d, (i + 1) * d), 5);
    assert.ok(r.ids instanceof BigUint64Array && r.distances instanceof Float32Array);
    assert.equal(r.ids.length, 5);
    for (let j = 1; j < 5; j++) assert.ok(r.distances[j] >= r.distances[j - 1]);
    if (r.ids[0] === BigInt(i)) self++;
  }
  assert.ok(self >= 98, `self hits ${self}/100`);
  const g = ix.get(3n);
  assert.deepEqual(Array.from(g.vector), Array.from(v.subarray(3 * d, 4 * d)));
  assert.equal(td.decode(g.meta), '{"i":3}');
  assert.equal(ix.get(2n).meta, null);
  assert.equal(ix.get(100000n), null);
  assert.equal(ix.contains(4), true);
  assert.equal(ix.delete(4n), true);
  assert.equal(ix.delete(4n), false);
  assert.equal(ix.contains(4n), false);
  assert.equal(ix.stats().count, n - 1);
  const r = ix.search(v.subarray(4 * d, 5 * d), 10);
  assert.ok(!Array.from(r.ids).includes(4n));
  ix.upsert(5n, v.subarray(0, d), 'moved');
  assert.equal(ix.search(v.subarray(0, d), 2).ids.includes(5n), true);
  assert.equal(td.decode(ix.get(5n).meta), 'moved');
  ix.close();
  throwsCode(() => ix.stats(), Status.EINVAL, /closed/);
});

test('64-bit ids round trip as BigInt', () => {
  const ix = qz.open(null, { dimensions: 2, metric: 'l2' });
  const big = 0xfedcba9876543210n;
  ix.insert(big, [1, 2]);
  ix.insert(2n ** 63n, [3, 4]);
  assert.deepEqual(Array.from(ix.search([1, 2], 2).ids), [big, 2n ** 63n]);
  assert.ok(ix.get(big));
  throwsCode(() => ix.insert(-1n, [1, 1]), Status.EINVAL);
  throwsCode(() => ix.insert(2 ** 60, [1, 1]), Status.EINVAL, /safe/);
  ix.close();
});

test('errors carry the status and change nothing', () => {
  const ix = qz.open(null, { dimensions: 4, metric: 'cosine' });
  ix.insert(1n, [1, 0, 0, 0], 'a');
  throwsCode(() => ix.insert(1n, [0, 1, 0, 0]), Status.EEXISTS, /exists/);
  throwsCode(() => ix.insert(2n, [1, 2, 3]), Status.EDIM, /3 dimensions/);
  throwsCode(() => ix.insert(2n, [1, NaN, 3, 4]), Status.ENONFINITE);
  throwsCode(() => ix.insert(2n, [0, 0, 0, 0]), Status.EZEROVEC);
  throwsCode(() => ix.search([1, 0, 0, 0], 0), Status.ERANGE);
  throwsCode(() => ix.search([1, 0, 0, 0], 10001), Status.ERANGE);
  throwsCode(() => ix.search([1, 0, 0], 1), Status.EDIM);
  throwsCode(() => qz.open(null, { dimensions: 0 }), Status.EINVAL);
  throwsCode(() => qz.open(null, { dimensions: 4, metric: 'nope' }), Status.EINVAL, /metric/);
  const st = ix.stats();
  assert.equal(st.count, 1);
  assert.deepEqual(Array.from(ix.get(1n).vector), [1, 0, 0, 0]);
  assert.equal(td.decode(ix.get(1n).meta), 'a');
  ix.close();
});

test('batch insert: checked whole, upsert flag, metadata', () => {
  const d = 8, ix = qz.open(null, { dimensions: d, metric: 'l2' });
  const v = randVecs(10, d, 3);
  const ids = BigUint64Array.from({ length: 10 }, (_, i) => BigInt(i + 1));
  const bad = v.slice();
  bad[7 * d + 2] = Infinity;
  throwsCode(() => ix.insertBatch(ids, bad), Status.ENONFINITE, /row 7/);
  assert.equal(ix.stats().count, 0);
  const dup = ids.slice();
  dup[9] = 1n;
  throwsCode(() => ix.insertBatch(dup, v), Status.EEXISTS);
  assert.equal(ix.stats().count, 0);
  const metas = Array.from({ length: 10 }, (_, i) => (i % 3 ? null : `row${i}`));
  assert.equal(ix.insertBatch(ids, v, metas), 10);
  assert.equal(ix.stats().count, 10);
  assert.equal(td.decode(ix.get(4n).meta), 'row3');
  throwsCode(() => ix.insertBatch(ids, v), Status.EEXISTS);
  const rows = Array.from({ length: 10 }, () => Array.from({ length: d }, () => 0.5));
  assert.equal(ix.insertBatch(Array.from(ids), rows, null, { upsert: true }), 10);
  assert.equal(ix.stats().count, 10);
  assert.deepEqual(Array.from(ix.get(10n).vector), rows[9]);
  ix.close();
});

test('search with an id filter (allow list and deny list)', () => {
  const d = 4, ix = qz.open(null, { dimensions: d, metric: 'l2' });
  for (let i = 0; i < 50; i++) ix.insert(BigInt(i), [i, 0, 0, 0]);
  const r = ix.search([0, 0, 0, 0], 3, { filter: [40n, 7n, 30n, 99n] });
  assert.deepEqual(Array.from(r.ids), [7n, 30n, 40n]);
  const x = ix.search([0, 0, 0, 0], 3, { filter: [0n, 1n], exclude: true });
  assert.deepEqual(Array.from(x.ids), [2n, 3n, 4n]);
  assert.equal(ix.search([0, 0, 0, 0], 3, { filter: [] }).ids.length, 0);
  ix.close();
});

test('key-value store: strings and bytes', () => {
  const ix = qz.open(null, { dimensions: 2 });
  ix.kvPut('k1', 'v1');
  const bin = Uint8Array.from({ length: 3000 }, (_, i) => i & 255);
  ix.kvPut(new Uint8Array([0, 255, 1]), bin);
  assert.equal(td.decode(ix.kvGet('k1')), 'v1');
  assert.deepEqual(ix.kvGet(new Uint8Array([0, 255, 1])), bin);
  assert.equal(ix.kvGet('nope'), null);
  assert.equal(ix.kvDelete('k1'), true);
  assert.equal(ix.kvDelete('k1'), false);
  assert.equal(ix.kvGet('k1'), null);
  throwsCode(() => ix.kvPut('x'.repeat(512), 'v'), Status.ERANGE);
  ix.close();
});

test('map backend: a write is committed when the call returns; reopen loads it', () => {
  const st = new MapStore();
  const d = 12, n = 300, v = randVecs(n, d, 11);
  const ix = qz.open(st, { dimensions: d, metric: 'ip', M: 8, efConstruction: 64 });
  let commits = st.commits;
  ix.insert(0n, v.subarray(0, d), 'first');
  assert.ok(st.commits > commits, 'insert returned before its commit');
  commits = st.commits;
  ix.kvPut('cfg', '{"a":1}');
  assert.ok(st.commits > commits, 'kv put returned before its commit');
  ix.insertBatch(BigUint64Array.from({ length: n - 1 }, (_, i) => BigInt(i + 1)), v.subarray(d));
  ix.delete(7n);
  const before = ix.search(v.subarray(0, d), 10);
  ix.close();
  assert.ok(st.size().rows >= n);
  const re = qz.open(st, {});
  const s = re.stats();
  assert.equal(s.dimensions, d);
  assert.equal(s.metric, 'ip');
  assert.equal(s.M, 8);
  assert.equal(s.count, n - 1);
  assert.equal(s.openReinserted, 0);
  assert.equal(td.decode(re.get(0n).meta), 'first');
  assert.equal(re.get(7n), null);
  assert.equal(td.decode(re.kvGet('cfg')), '{"a":1}');
  assert.deepEqual(Array.from(re.search(v.subarray(0, d), 10).ids), Array.from(before.ids));
  re.check();
  re.close();
});

test('map backend: int8 with originals in storage re-ranks on the stored originals, exactly', () => {
  const d = 32, n = 600, v = randVecs(n, d, 23);
  const ids = BigUint64Array.from({ length: n }, (_, i) => BigInt(i));
  const exact = (i, j) => {
    let s = 0;
    for (let c = 0; c < d; c++) s += (v[i * d + c] - v[j * d + c]) ** 2;
    return s;
  };
  const mem = {};
  for (const originals of ['memory', 'storage']) {
    const st = new MapStore();
    const ix = qz.open(st, { dimensions: d, metric: 'l2', dtype: 'int8', originals, initialCapacity: n });
    ix.insertBatch(ids, v);
    assert.equal(ix.stats().dtype, 'int8');
    for (let i = 0; i < 50; i++) {
      const r = ix.search(v.subarray(i * d, (i + 1) * d), 5);
      assert.equal(r.ids[0], BigInt(i));
      for (let j = 0; j < 5; j++) {
        const e = exact(i, Number(r.ids[j]));
        assert.ok(Math.abs(r.distances[j] - e) < 1e-4 * (1 + e), `distance ${r.distances[j]} vs exact ${e}`);
      }
    }
    assert.deepEqual(Array.from(ix.get(321n).vector), Array.from(v.subarray(321 * d, 322 * d)));
    mem[originals] = ix.stats().memoryBytes;
    ix.close();
    // reopened over the same store, the originals still come from it
    const re = qz.open(st, { originals });
    assert.equal(re.stats().openReinserted, 0);
    assert.deepEqual(Array.from(re.get(599n).vector), Array.from(v.subarray(599 * d, 600 * d)));
    assert.equal(re.search(v.subarray(0, d), 1).ids[0], 0n);
    re.close();
  }
  assert.ok(mem.storage + n * d * 4 <= mem.memory + n * 16, `memory ${mem.storage} vs ${mem.memory}`);
  throwsCode(() => qz.open(null, { dimensions: d, dtype: 'int8', originals: 'storage' }), Status.EINVAL, /in-memory/);
  throwsCode(() => qz.open(new MapStore(), { dimensions: d, originals: 'storage' }), Status.EINVAL,
    /QZ_OPEN_ORIGINALS_IN_STORAGE/);
  throwsCode(() => qz.open(new MapStore(), { dimensions: d, dtype: 'int4' }), Status.EINVAL, /dtype/);
});

test('map backend: an index dropped without close (a lost isolate) keeps every acknowledged write', async () => {
  const st = new MapStore();
  const d = 8, v = randVecs(200, d, 5);
  const ix = qz.open(st, { dimensions: d, metric: 'l2' });
  const acked = [];
  for (let i = 0; i < 200; i++) {
    ix.upsert(BigInt(i), v.subarray(i * d, (i + 1) * d), `m${i}`);
    acked.push(i);
  }
  // A second wasm instance (a new isolate) opens the same store while the
  // first one is never closed.
  const qz2 = await loadQuartzNode(dir);
  const re = qz2.open(st, { existing: true });
  assert.equal(re.stats().count, acked.length);
  for (const i of acked) {
    const g = re.get(BigInt(i));
    assert.ok(g, `acknowledged id ${i} missing`);
    assert.equal(td.decode(g.meta), `m${i}`);
    assert.deepEqual(Array.from(g.vector), Array.from(v.subarray(i * d, (i + 1) * d)));
  }
  re.check();
  re.close();
});

test('map backend: a failed commit is QZ_EIO and nothing of it is stored', () => {
  const st = new MapStore();
  const ix = qz.open(st, { dimensions: 2, metric: 'l2' });
  ix.insert(1n, [1, 1]);
  const apply = st.apply.bind(st);
  st.apply = () => { throw new Error('disk on fire'); };
  const e = throwsCode(() => ix.insert(2n, [2, 2]), Status.EIO);
  assert.match(e.message, /disk on fire|host storage/);
  st.apply = apply;
  const rows = st.size().rows;
  const qz2 = qz; // same instance, fresh open of the committed state
  const re = qz2.open(st, {});
  assert.equal(re.get(2n), null);
  assert.ok(re.get(1n));
  assert.equal(st.size().rows, rows);
  re.close();
});

test('open: existing on an empty store is QZ_ENOTFOUND; mismatched dimensions refused', () => {
  throwsCode(() => qz.open(new MapStore(), { existing: true }), Status.ENOTFOUND);
  const st = new MapStore();
  qz.open(st, { dimensions: 3 }).close();
  assert.throws(() => qz.open(st, { dimensions: 4 }), (e) => e instanceof QuartzError && e.code < 0);
  assert.equal(qz.open(st, {}).stats().dimensions, 3);
});

test('running out of linear memory is QZ_ENOMEM, and the module keeps working', async () => {
  const q = await loadQuartzNode(dir); // its own 96 MB memory
  const d = 4096, ix = q.open(null, { dimensions: d, metric: 'l2', M: 4, efConstruction: 8, efSearch: 8 });
  const v = new Float32Array(d);
  let err = null, n = 0;
  for (; n < 20000; n++) {
    v[n % d] += 1;
    try {
      ix.insert(BigInt(n), v);
    } catch (e) {
      err = e;
      break;
    }
  }
  assert.ok(err, `no error after ${n} inserts of ${d} floats`);
  assert.ok(err instanceof QuartzError, `expected QuartzError, got ${err}`);
  assert.equal(err.code, Status.ENOMEM, err.message);
  assert.ok(q.memoryBytes() <= 96 * 1024 * 1024);
  assert.equal(ix.stats().count, n);
  assert.equal(ix.search(v, 1).ids.length, 1);
  ix.close();
  const small = q.open(null, { dimensions: 4 });
  small.insert(1n, [1, 2, 3, 4]);
  assert.equal(small.search([1, 2, 3, 4], 1).ids[0], 1n);
});
