'use strict';
// Shared by the tests: a fixed-seed generator, synthetic data, texmex
// readers, temporary directories, and the "nothing changed" check.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const quartz = require('..');

/** Where the real datasets live: QZ_DATA_DIR, else ../shared/data beside the source root. */
const DATA_DIR = process.env.QZ_DATA_DIR || path.resolve(__dirname, '..', '..', '..', '..', 'shared', 'data');

/** xorshift64* over BigInt state, reduced to doubles: deterministic across runs. */
class Rng {
  constructor(seed) {
    this.s = BigInt(seed) * 0x9e3779b97f4a7c15n + 1n;
    this.s &= 0xffffffffffffffffn;
  }
  next() {
    let x = this.s;
    x ^= x >> 12n;
    x ^= (x << 25n) & 0xffffffffffffffffn;
    x ^= x >> 27n;
    this.s = x;
    return (x * 0x2545f4914f6cdd1dn) & 0xffffffffffffffffn;
  }
  uniform() {
    return Number(this.next() >> 11n) / 2 ** 53;
  }
  normal() {
    const u = Math.max(this.uniform(), 1e-300);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }
}

/** n rows of dim normal floats around `clusters` random centres (row-major Float32Array). */
function dataset(n, dim, clusters, seed) {
  const r = new Rng(seed);
  const c = new Float64Array(clusters * dim);
  for (let i = 0; i < c.length; i++) c[i] = r.normal() * 3;
  const x = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const k = clusters ? Math.floor(r.uniform() * clusters) : -1;
    for (let j = 0; j < dim; j++) x[i * dim + j] = r.normal() + (k >= 0 ? c[k * dim + j] : 0);
  }
  return x;
}

function row(x, dim, i) {
  return x.subarray(i * dim, (i + 1) * dim);
}

/** texmex .fvecs / .ivecs: each row is int32 d, then d values. Returns { n, dim, data }. */
function readVecs(file, Kind) {
  const buf = fs.readFileSync(file);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dim = dv.getInt32(0, true);
  const rowBytes = 4 + dim * 4;
  if (buf.byteLength % rowBytes) throw new Error(`${file}: size ${buf.byteLength} is not rows of ${dim}`);
  const n = buf.byteLength / rowBytes;
  const data = new Kind(n * dim);
  for (let i = 0; i < n; i++) {
    if (dv.getInt32(i * rowBytes, true) !== dim) throw new Error(`${file}: row ${i} has another dimension`);
    for (let j = 0; j < dim; j++) {
      const off = i * rowBytes + 4 + j * 4;
      data[i * dim + j] = Kind === Float32Array ? dv.getFloat32(off, true) : dv.getInt32(off, true);
    }
  }
  return { n, dim, data };
}

/** A dataset folder of DATA_DIR, or a reason why not (for { skip }). */
function loadDataset(name) {
  const dir = path.join(DATA_DIR, name);
  const files = ['base.fvecs', 'query.fvecs', 'gt.ivecs'].map((f) => path.join(dir, f));
  const missing = files.filter((f) => !fs.existsSync(f));
  if (missing.length) return { skip: `${name}: ${missing.join(', ')} not found (set QZ_DATA_DIR)` };
  return {
    dir,
    base: readVecs(files[0], Float32Array),
    query: readVecs(files[1], Float32Array),
    gt: readVecs(files[2], Int32Array),
  };
}

function tmpdir(t, label = 'qz-node-') {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), label));
  if (t) t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** The fixture of tests/api/test_bad_input.c: 200 clustered 16-d rows, cosine, M 8, ef_construction 32. */
const DIM = 16;
const N = 200;
function fixture(t) {
  const db = new quartz.Database({ dim: DIM, metric: 'cosine', M: 8, efConstruction: 32 });
  if (t) t.after(() => db.close());
  const data = dataset(N, DIM, 4, 11);
  for (let i = 0; i < N; i++) db.insert(i, row(data, DIM, i), 'm');
  const before = db.search(row(data, DIM, 0), 10);
  /** The database answers exactly as before the bad call. */
  function assertUnchanged() {
    const st = db.stats();
    assert.equal(st.count, N);
    assert.equal(st.deleted, 0);
    const now = db.search(row(data, DIM, 0), 10);
    assert.deepEqual(now.ids, before.ids);
    assert.deepEqual(now.distances, before.distances);
    db.check();
  }
  return { db, data, before, assertUnchanged };
}

/**
 * assert.throws for a QuartzError: its class, code, errno (the fixed number
 * from quartz.h) and, when given, a message pattern.
 */
function isQuartz(code, message) {
  return (e) => {
    assert.ok(e instanceof quartz.QuartzError, `expected a QuartzError ${code}, got ${e && e.constructor.name}: ${e && e.message}`);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'QuartzError');
    assert.equal(e.code, code, `code of: ${e.message}`);
    assert.equal(e.errno, quartz.codes[code]);
    assert.equal(typeof e.message, 'string');
    assert.ok(e.message.length > 0);
    if (message instanceof RegExp) assert.match(e.message, message);
    else if (message !== undefined) assert.equal(e.message, message);
    return true;
  };
}

function isType(pattern) {
  return (e) => {
    assert.ok(e instanceof TypeError, `expected a TypeError, got ${e && e.constructor.name}: ${e && e.message}`);
    assert.ok(!(e instanceof quartz.QuartzError));
    if (pattern) assert.match(e.message, pattern);
    return true;
  };
}

module.exports = { quartz, DATA_DIR, Rng, dataset, row, readVecs, loadDataset, tmpdir, fixture, DIM, N, isQuartz, isType };
