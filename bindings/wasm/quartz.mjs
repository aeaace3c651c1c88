// quartz.mjs - libquartz in WebAssembly for Node and Cloudflare Workers.
//
//   import createQuartzModule from './quartz_wasm.mjs';
//   import wasmModule from './quartz_wasm.wasm';          // a WebAssembly.Module (Worker)
//   const qz = await loadQuartz({ factory: createQuartzModule, wasmModule });
//   const ix = qz.open(new MapStore(), { dimensions: 384, metric: 'cosine' });
//   ix.insert(1n, new Float32Array(384).fill(0.1));
//   const { ids, distances } = ix.search(query, 10);     // BigUint64Array, Float32Array
//
// The .wasm is always handed in as a compiled WebAssembly.Module (a Worker
// imports it as a module; Node compiles the file once, see quartz-node.mjs):
// this module never compiles bytes itself.
//
// One wasm instance (one linear memory, at most 96 MB) serves any number of
// indexes. Every error of the engine is thrown as a QuartzError whose .code
// is the qz_status (QuartzError.ENOMEM === -2 ...) and whose message is
// qz_errmsg(). Running out of linear memory is QZ_ENOMEM, never an abort.

import { HostRegistry, MapStore, SqlStore } from './host_storage.mjs';

export { MapStore, SqlStore, HostRegistry };

export const Status = Object.freeze({
  OK: 0, EINVAL: -1, ENOMEM: -2, ENOTFOUND: -3, EEXISTS: -4, EIO: -5, ECORRUPT: -6, EFULL: -7, EBUSY: -8,
  EVERSION: -9, EDIM: -10, EUSER: -11, ENONFINITE: -12, EZEROVEC: -13, ERANGE: -14, ETOOSMALL: -15,
  EREADONLY: -16, EUNSUPPORTED: -17,
});
const STATUS_NAME = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, 'QZ_' + k]));

export const Metric = Object.freeze({ cosine: 1, l2: 2, ip: 3, hamming: 4 });
const METRIC_NAME = { 1: 'cosine', 2: 'l2', 3: 'ip', 4: 'hamming' };

export const Param = Object.freeze({ EF_SEARCH: 1, CHECKPOINT_WRITES: 2, CHECKPOINT_MS: 3 });
export const OPEN_READONLY = 1, OPEN_EXISTING = 2, OPEN_ORIGINALS_IN_STORAGE = 4;
export const Dtype = { f32: 1, f16: 2, int8: 3, binary: 4 };
const DTYPE_NAME = { 0: 'f32', 1: 'f32', 2: 'f16', 3: 'int8', 4: 'binary' };
export const MAX_K = 10000, MAX_EF = 100000, MAX_METADATA = 16 * 1024 * 1024, MAX_KEY = 511;

export class QuartzError extends Error {
  constructor(code, message) {
    super(message || STATUS_NAME[code] || `status ${code}`);
    this.name = 'QuartzError';
    this.code = code;
    this.status = STATUS_NAME[code] || `status ${code}`;
  }
}
for (const [k, v] of Object.entries(Status)) if (v) QuartzError[k] = v;

const enc = new TextEncoder();

function toBytes(x, what) {
  if (x === undefined || x === null) return null;
  if (typeof x === 'string') return enc.encode(x);
  if (x instanceof Uint8Array) return x;
  if (ArrayBuffer.isView(x)) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (x instanceof ArrayBuffer) return new Uint8Array(x);
  throw new QuartzError(Status.EINVAL, `${what} must be a string, a Uint8Array or an ArrayBuffer`);
}

function toId(id) {
  if (typeof id === 'bigint') {
    if (id < 0n || id > 0xffffffffffffffffn) throw new QuartzError(Status.EINVAL, `id ${id} is not a 64-bit unsigned integer`);
    return id;
  }
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return BigInt(id);
  throw new QuartzError(Status.EINVAL, `id must be a BigInt or a safe non-negative integer, got ${String(id)}`);
}

/**
 * Instantiate the wasm module. factory: the default export of quartz_wasm.mjs;
 * wasmModule: a compiled WebAssembly.Module of quartz_wasm.wasm.
 */
export async function loadQuartz({ factory, wasmModule }) {
  if (typeof factory !== 'function') throw new TypeError('loadQuartz: factory (quartz_wasm.mjs default export) missing');
  if (!(wasmModule instanceof WebAssembly.Module)) throw new TypeError('loadQuartz: wasmModule must be a WebAssembly.Module');
  const host = new HostRegistry();
  const M = await factory({
    qzHost: host,
    locateFile: (p) => p, // never fetched: instantiateWasm below supplies the module
    instantiateWasm(imports, done) {
      WebAssembly.instantiate(wasmModule, imports).then((inst) => done(inst, wasmModule));
      return {};
    },
    print: () => {},
    printErr: () => {},
  });
  host.module = M;
  return new Quartz(M, host);
}

class Scratch {
  // Allocations of one call, freed together.
  constructor(M) { this.M = M; this.p = []; }
  alloc(n) {
    const p = this.M._malloc(Math.max(1, n));
    if (!p) {
      this.free();
      throw new QuartzError(Status.ENOMEM, `out of wasm memory for ${n} bytes`);
    }
    this.p.push(p);
    return p;
  }
  bytes(u8) {
    const p = this.alloc(u8.length);
    this.M.HEAPU8.set(u8, p);
    return p;
  }
  floats(f32) {
    const p = this.alloc(f32.length * 4);
    new Float32Array(this.M.HEAPU8.buffer, p, f32.length).set(f32);
    return p;
  }
  free() { for (const p of this.p) this.M._free(p); this.p = []; }
}

export class Quartz {
  constructor(M, host) {
    this.M = M;
    this.host = host;
    this.simd = M.UTF8ToString(M._qz_simd_backend());
    this.version = M.UTF8ToString(M._qz_version_string());
  }
  /** Bytes of wasm linear memory now (it only grows, up to the ceiling). */
  memoryBytes() { return this.M.HEAPU8.buffer.byteLength; }
  check(rc) {
    if (rc < 0) {
      let msg = this.M.UTF8ToString(this.M._qz_errmsg());
      if (rc === Status.EIO && this.host.lastError) msg += ` (host: ${this.host.lastError})`;
      throw new QuartzError(rc, msg || STATUS_NAME[rc]);
    }
    return rc;
  }
  /**
   * Open or create an index. storage: null (memory only), a store
   * (MapStore, SqlStore, or any object with get/scan/apply). options:
   * dimensions (required for a new one), metric ('cosine'|'l2'|'ip'|'hamming'
   * or its number), M, efConstruction, efSearch, readonly, existing,
   * dtype ('f32' default, 'f16', 'int8', 'binary': the codes the graph is
   * searched on, re-ranked on the f32 originals), originals ('memory'
   * default, or 'storage': an f16/int8 index keeps only its codes in linear
   * memory and reads the originals from the store for re-ranking and get),
   * initialCapacity (vectors to reserve room for; by default as many as fit
   * in 4 MiB, between 16 and 1024, so a wide index does not take the whole
   * linear memory before its first insert).
   */
  open(storage, options = {}) {
    const M = this.M;
    let metric = options.metric ?? 0;
    if (typeof metric === 'string') {
      if (!(metric in Metric)) throw new QuartzError(Status.EINVAL, `unknown metric "${metric}"`);
      metric = Metric[metric];
    }
    let dtype = options.dtype ?? 0;
    if (typeof dtype === 'string') {
      if (!(dtype in Dtype)) throw new QuartzError(Status.EINVAL, `unknown dtype "${dtype}"`);
      dtype = Dtype[dtype];
    }
    const originals = options.originals ?? 'memory';
    if (originals !== 'memory' && originals !== 'storage')
      throw new QuartzError(Status.EINVAL, `originals must be "memory" or "storage", not "${originals}"`);
    const flags = (options.readonly ? OPEN_READONLY : 0) | (options.existing ? OPEN_EXISTING : 0) |
      (originals === 'storage' ? OPEN_ORIGINALS_IN_STORAGE : 0);
    const dims = options.dimensions >>> 0;
    const initcap = options.initialCapacity ??
      (dims ? Math.max(16, Math.min(1024, Math.floor((4 << 20) / (dims * 4)))) : 0);
    const handle = storage ? this.host.register(storage) : 0;
    const s = new Scratch(M);
    try {
      const out = s.alloc(4);
      const rc = M._qzw_open(handle, dims, metric >>> 0, (options.M ?? 0) >>> 0,
        (options.efConstruction ?? 0) >>> 0, (options.efSearch ?? 0) >>> 0, flags, initcap >>> 0, dtype >>> 0, out);
      if (rc < 0) {
        if (handle) this.host.close(handle);
        this.check(rc);
      }
      const w = new Uint32Array(M.HEAPU8.buffer, out, 1)[0];
      return new QuartzIndex(this, w, handle, storage);
    } finally {
      s.free();
    }
  }
}

export class QuartzIndex {
  constructor(qz, w, handle, storage) {
    this.qz = qz;
    this.M = qz.M;
    this.w = w;
    this.db = this.M._qzw_db(w);
    this.handle = handle;
    this.storage = storage;
    const st = this.stats();
    this.dimensions = st.dimensions;
    this.metric = st.metric;
  }
  _live() {
    if (!this.w) throw new QuartzError(Status.EINVAL, 'the index is closed');
  }
  _vec(v, what = 'vector') {
    if (v instanceof Float32Array) return v;
    if (Array.isArray(v) || ArrayBuffer.isView(v)) return Float32Array.from(v);
    throw new QuartzError(Status.EINVAL, `${what} must be a Float32Array or an array of numbers`);
  }
  _put(fn, id, vector, meta) {
    this._live();
    const v = this._vec(vector), m = toBytes(meta, 'metadata');
    const s = new Scratch(this.M);
    try {
      const vp = s.floats(v);
      const mp = m && m.length ? s.bytes(m) : 0;
      this.qz.check(fn(this.db, toId(id), vp, v.length, mp, m ? m.length : 0));
    } finally { s.free(); }
  }
  /** Insert under a new id (QuartzError EEXISTS if present). meta: bytes or a string. */
  insert(id, vector, meta) { this._put(this.M._qz_db_insert, id, vector, meta); }
  /** Insert or replace. */
  upsert(id, vector, meta) { this._put(this.M._qz_db_upsert, id, vector, meta); }
  /**
   * Insert n rows at once: ids (BigUint64Array or array of ids), vectors
   * (Float32Array of n*dimensions, or an array of n rows), metas (optional
   * array of n bytes/strings/null). Checked whole before anything changes.
   */
  insertBatch(ids, vectors, metas = null, { upsert = false } = {}) {
    this._live();
    const n = ids.length, d = this.dimensions;
    let flat;
    if (vectors instanceof Float32Array) flat = vectors;
    else if (Array.isArray(vectors) && vectors.length === n && n > 0 && typeof vectors[0] !== 'number') {
      flat = new Float32Array(n * d);
      for (let i = 0; i < n; i++) {
        const r = this._vec(vectors[i]);
        if (r.length !== d)
          throw new QuartzError(Status.EDIM, `row ${i}: vector has ${r.length} dimensions, index expects ${d}`);
        flat.set(r, i * d);
      }
    } else flat = this._vec(vectors, 'vectors');
    if (n === 0) return 0;
    if (flat.length % n !== 0) throw new QuartzError(Status.EINVAL, `${flat.length} floats do not split into ${n} rows`);
    const dims = flat.length / n;
    const s = new Scratch(this.M);
    try {
      const ip = s.alloc(n * 8);
      const idv = new BigUint64Array(this.M.HEAPU8.buffer, ip, n);
      for (let i = 0; i < n; i++) idv[i] = toId(ids[i]);
      const vp = s.floats(flat);
      let mp = 0, lp = 0;
      if (metas) {
        if (metas.length !== n) throw new QuartzError(Status.EINVAL, `${metas.length} metadata entries for ${n} rows`);
        const bs = metas.map((m, i) => toBytes(m, `metas[${i}]`));
        mp = s.alloc(n * 4);
        lp = s.alloc(n * 4);
        const ptrs = [], lens = [];
        for (const b of bs) {
          ptrs.push(b && b.length ? s.bytes(b) : 0);
          lens.push(b ? b.length : 0);
        }
        new Uint32Array(this.M.HEAPU8.buffer, mp, n).set(ptrs);
        new Uint32Array(this.M.HEAPU8.buffer, lp, n).set(lens);
      }
      this.qz.check(this.M._qz_db_insert_batch(this.db, n, ip, vp, dims, mp, lp, upsert ? 1 : 0));
      return n;
    } finally { s.free(); }
  }
  /**
   * Top-k nearest of query: { ids: BigUint64Array, distances: Float32Array },
   * nearest first. options: ef, filter (ids to accept: BigUint64Array or
   * array), exclude (true: filter is a deny list).
   */
  search(query, k = 10, { ef = 0, filter = null, exclude = false } = {}) {
    this._live();
    const q = this._vec(query, 'query');
    const M = this.M;
    const s = new Scratch(M);
    try {
      const qp = s.floats(q);
      const kk = Math.max(1, Math.min(k >>> 0 || 0, MAX_K + 1));
      const ip = s.alloc(kk * 8), dp = s.alloc(kk * 4), fp = s.alloc(4);
      let rc;
      if (filter) {
        const f = BigUint64Array.from(filter, toId).sort();
        const ap = s.alloc(f.length * 8);
        new BigUint64Array(M.HEAPU8.buffer, ap, f.length).set(f);
        rc = M._qzw_search_ids(this.w, qp, q.length, k >>> 0, ef >>> 0, ap, f.length, exclude ? 1 : 0, ip, dp, fp);
      } else {
        rc = M._qzw_search(this.w, qp, q.length, k >>> 0, ef >>> 0, ip, dp, fp);
      }
      this.qz.check(rc);
      const found = new Uint32Array(M.HEAPU8.buffer, fp, 1)[0];
      return {
        ids: new BigUint64Array(M.HEAPU8.buffer, ip, found).slice(),
        distances: new Float32Array(M.HEAPU8.buffer, dp, found).slice(),
      };
    } finally { s.free(); }
  }
  /** { vector: Float32Array, meta: Uint8Array | null } of id, or null when absent. */
  get(id) {
    this._live();
    const M = this.M, d = this.dimensions;
    const s = new Scratch(M);
    try {
      const eid = toId(id);
      const vp = s.alloc(d * 4), lp = s.alloc(4);
      let cap = 256, mp = s.alloc(cap);
      let rc = M._qz_db_get(this.db, eid, vp, d, mp, cap, lp);
      if (rc === Status.ETOOSMALL) {
        cap = new Uint32Array(M.HEAPU8.buffer, lp, 1)[0];
        mp = s.alloc(cap);
        rc = M._qz_db_get(this.db, eid, vp, d, mp, cap, lp);
      }
      if (rc === Status.ENOTFOUND) return null;
      this.qz.check(rc);
      const ml = new Uint32Array(M.HEAPU8.buffer, lp, 1)[0];
      return {
        vector: new Float32Array(M.HEAPU8.buffer, vp, d).slice(),
        meta: ml ? M.HEAPU8.slice(mp, mp + ml) : null,
      };
    } finally { s.free(); }
  }
  contains(id) {
    this._live();
    return this.qz.check(this.M._qz_db_contains(this.db, toId(id))) === 1;
  }
  /** Delete id: true, or false when it was absent. */
  delete(id) {
    this._live();
    const rc = this.M._qz_db_delete(this.db, toId(id));
    if (rc === Status.ENOTFOUND) return false;
    this.qz.check(rc);
    return true;
  }
  stats() {
    this._live();
    const s = new Scratch(this.M);
    try {
      const p = s.alloc(11 * 8);
      this.qz.check(this.M._qzw_stats(this.w, p));
      const a = new Float64Array(this.M.HEAPU8.buffer, p, 11);
      return {
        dimensions: a[0], metric: METRIC_NAME[a[1]] || String(a[1]), M: a[2], efConstruction: a[3], efSearch: a[4],
        count: a[5], deleted: a[6], capacity: a[7], memoryBytes: a[8], openReinserted: a[9], simd: this.qz.simd,
        dtype: DTYPE_NAME[a[10]] || String(a[10]),
      };
    } finally { s.free(); }
  }
  kvPut(key, value) {
    this._live();
    const k = toBytes(key, 'key'), v = toBytes(value, 'value') || new Uint8Array(0);
    const s = new Scratch(this.M);
    try {
      this.qz.check(this.M._qz_kv_put(this.db, s.bytes(k), k.length, v.length ? s.bytes(v) : 0, v.length));
    } finally { s.free(); }
  }
  /** The value of key as a Uint8Array, or null when absent. */
  kvGet(key) {
    this._live();
    const M = this.M, k = toBytes(key, 'key');
    const s = new Scratch(M);
    try {
      const kp = s.bytes(k), lp = s.alloc(4);
      let cap = 256, bp = s.alloc(cap);
      let rc = M._qz_kv_get(this.db, kp, k.length, bp, cap, lp);
      if (rc === Status.ETOOSMALL) {
        cap = new Uint32Array(M.HEAPU8.buffer, lp, 1)[0];
        bp = s.alloc(cap);
        rc = M._qz_kv_get(this.db, kp, k.length, bp, cap, lp);
      }
      if (rc === Status.ENOTFOUND) return null;
      this.qz.check(rc);
      const n = new Uint32Array(M.HEAPU8.buffer, lp, 1)[0];
      return M.HEAPU8.slice(bp, bp + n);
    } finally { s.free(); }
  }
  /** Delete key: true, or false when it was absent. */
  kvDelete(key) {
    this._live();
    const k = toBytes(key, 'key');
    const s = new Scratch(this.M);
    try {
      const rc = this.M._qz_kv_delete(this.db, s.bytes(k), k.length);
      if (rc === Status.ENOTFOUND) return false;
      this.qz.check(rc);
      return true;
    } finally { s.free(); }
  }
  setParam(key, value) { this._live(); this.qz.check(this.M._qz_db_set_param(this.db, key, BigInt(value))); }
  flush() { this._live(); this.qz.check(this.M._qz_db_flush(this.db)); }
  check() { this._live(); this.qz.check(this.M._qz_db_check(this.db)); }
  compact() { this._live(); this.qz.check(this.M._qz_db_compact(this.db)); }
  /** Close the index (final flush) and release its host store handle. */
  close() {
    if (!this.w) return;
    const rc = this.M._qzw_close(this.w);
    this.w = 0;
    this.db = 0;
    this.qz.check(rc);
  }
}
