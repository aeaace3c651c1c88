// objects.js - the Durable Object classes of the QuartzDB Worker.
//
//   QuartzShard    one shard of one index: a QuartzIndex (libquartz in wasm)
//                  whose durable state is paged into this object's SQLite
//                  storage (SqlStore: rows of at most 1 MiB, each commit one
//                  transactionSync). Named "<index>#<shard>".
//   QuartzCatalog  the index definitions (one object, "catalog").
//   QuartzKV       the key-value store (one object, "kv"), as the ancestor had.
//
// Every write returns only after its storage commit; Durable Object output
// gates hold the response until that commit is on disk, so an acknowledged
// write survives the process being killed.
//
// One wasm instance serves every object of the isolate (one linear memory,
// capped at 96 MB): running out is QZ_ENOMEM and a 503, never a dead isolate.

import { DurableObject } from 'cloudflare:workers';
import createQuartzModule from './quartz_wasm.mjs';
import wasmModule from './quartz_wasm.wasm';
import { loadQuartz, SqlStore } from './quartz.mjs';
import { HttpError, errorOf, envelope, splitEnvelope, fnv1a64, idText } from './rest.js';

let quartzP = null;
/** The isolate's wasm instance. */
export function quartz() {
  if (!quartzP) quartzP = loadQuartz({ factory: createQuartzModule, wasmModule });
  return quartzP;
}

// Indexes opened by an object of this isolate, by object id. A new instance
// of the same object (after an eviction) closes its predecessor's handle
// before it opens its own: the old one's final flush must not write graph
// chunks over the new one's snapshot, and its wasm memory must not leak.
const openIndexes = new Map();
function closePrevious(key) {
  const old = openIndexes.get(key);
  if (!old) return;
  openIndexes.delete(key);
  try { old.close(); } catch { /* its storage object may be gone; nothing acknowledged is lost */ }
}
function adopt(key, ix) {
  openIndexes.set(key, ix);
}
function release(key, ix) {
  if (openIndexes.get(key) === ix) openIndexes.delete(key);
  try { ix.close(); } catch { /* as above */ }
}

const td = new TextDecoder();
const FLUSH_DELAY_MS = 5000;

function metaRow(sql, k) {
  const r = sql.exec('SELECT v FROM qz_meta WHERE k = ?', k).toArray();
  return r.length ? r[0].v : null;
}

export class QuartzShard extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.key = ctx.id.toString();
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS qz_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
    const d = metaRow(this.sql, 'def');
    this.def = d ? JSON.parse(d) : null;
    this.tomb = Number(metaRow(this.sql, 'dropped') || 0);
    this.ix = null;
    this.openMs = null;
    this.flushAt = 0;
    this.instance = crypto.randomUUID(); // tells a new instance (after an eviction) from the old one
    ctx.blockConcurrencyWhile(async () => { this.qz = await quartz(); });
  }

  _close() {
    if (this.ix) release(this.key, this.ix);
    this.ix = null;
    closePrevious(this.key);
  }

  /** The index for the Worker's definition, or null when that definition is
   *  stale (dropped, or replaced by a newer generation). */
  _index(def) {
    if (def.generation <= this.tomb) return null;
    if (this.def && this.def.generation > def.generation) return null;
    if (!this.def || this.def.generation < def.generation) {
      // A new incarnation of the name: whatever an older one left goes.
      this._close();
      new SqlStore(this.ctx.storage).destroy();
      this.ctx.storage.transactionSync(() => {
        this.sql.exec('INSERT OR REPLACE INTO qz_meta (k, v) VALUES (?, ?)', 'def', JSON.stringify(def));
      });
      this.def = def;
    }
    if (!this.ix) {
      // Reserve room for what the shard held at its last flush (or the
      // index's capacity): the engine grows its vector array by doubling,
      // and in a 96 MB linear memory a doubling is what runs out first.
      const last = Number(metaRow(this.sql, 'count') || 0);
      const per = def.capacity ? Math.ceil((def.capacity / def.shards) * (def.shards > 1 ? 1.1 : 1)) : 0;
      const want = Math.max(per, last ? Math.ceil(last * 1.05) + 64 : 0);
      closePrevious(this.key);
      const t0 = Date.now();
      this.ix = this.qz.open(new SqlStore(this.ctx.storage), {
        dimensions: def.dimension, metric: def.metric, M: def.M, efConstruction: def.ef_construction,
        efSearch: def.ef_search, initialCapacity: want || undefined,
      });
      this.openMs = Date.now() - t0;
      adopt(this.key, this.ix);
    }
    return this.ix;
  }

  // A write was acknowledged (it is committed already): ask for a flush a
  // few seconds later, which brings the graph snapshot up to date, so that
  // the next cold start loads the graph instead of re-inserting.
  _wrote() {
    if (this.flushAt) return;
    this.flushAt = Date.now() + FLUSH_DELAY_MS;
    this.ctx.storage.setAlarm(this.flushAt);
  }

  async alarm() {
    this.flushAt = 0;
    if (!this.ix) return;
    try {
      this.ix.flush();
      const n = this.ix.stats().count;
      this.sql.exec('INSERT OR REPLACE INTO qz_meta (k, v) VALUES (?, ?)', 'count', String(n));
    } catch (e) {
      console.error(`shard ${this.def && this.def.name}: flush failed: ${e.message}`);
    }
  }

  _run(def, fn, write = false) {
    try {
      const ix = this._index(def);
      if (!ix) return { stale: true };
      const ok = fn(ix);
      if (write) this._wrote();
      return { ok };
    } catch (e) {
      return { error: errorOf(e) };
    }
  }

  // 1 owned by this REST id, 0 absent; throws id_collision for another string.
  _owned(ix, id, pre = '') {
    const g = ix.get(id.eid);
    if (!g) return null;
    const { sid, meta } = splitEnvelope(g.meta);
    if (id.sid !== null && sid !== id.sid) {
      throw new HttpError(409, 'id_collision',
        `${pre}id ${idText(id)} maps to engine id ${id.eid}, which holds another string id`);
    }
    return { vector: g.vector, meta };
  }

  /** insert or upsert one row {eid, sid, vector, meta}. */
  put(def, row, upsert) {
    return this._run(def, (ix) => {
      if (row.sid !== null && this._owned(ix, row) && !upsert)
        throw new HttpError(409, 'already_exists', `id ${idText(row)} already exists`);
      const env = envelope(row, row.meta);
      try {
        if (upsert) ix.upsert(row.eid, row.vector, env.length ? env : null);
        else ix.insert(row.eid, row.vector, env.length ? env : null);
      } catch (e) {
        if (e.code === -4) throw new HttpError(409, 'already_exists', `id ${idText(row)} already exists`);
        throw e;
      }
      return true;
    }, true);
  }

  /** Phase 1 of a batch: would every row go in? rows: [{row, eid, sid}]. */
  batchCheck(def, rows, upsert) {
    return this._run(def, (ix) => {
      for (const r of rows) {
        const pre = `row ${r.row}: `;
        if (r.sid !== null) {
          const own = this._owned(ix, r, pre);
          if (own && !upsert) throw new HttpError(409, 'already_exists', `${pre}id ${idText(r)} already exists`);
        } else if (!upsert && ix.contains(r.eid)) {
          throw new HttpError(409, 'already_exists', `${pre}id ${idText(r)} already exists`);
        }
      }
      return true;
    });
  }

  /** Phase 2: rows [{row, eid, sid, meta}], vectors one Float32Array. */
  batchApply(def, rows, vectors, upsert) {
    return this._run(def, (ix) => {
      const ids = BigUint64Array.from(rows, (r) => r.eid);
      let any = false;
      const metas = rows.map((r) => {
        const e = envelope(r, r.meta);
        if (e.length) any = true;
        return e.length ? e : null;
      });
      ix.insertBatch(ids, vectors, any ? metas : null, { upsert });
      return rows.length;
    }, true);
  }

  /** Top k of this shard: [{eid, sid, distance, meta, vector}]. */
  search(def, query, k, ef, filter, withMeta, withVec) {
    return this._run(def, (ix) => {
      const r = ix.search(query, k, { ef, filter });
      const out = [];
      for (let i = 0; i < r.ids.length; i++) {
        const eid = r.ids[i];
        const hashed = eid >> 63n !== 0n;
        let sid = null, meta = null, vector = null;
        if (withMeta || withVec || hashed) {
          const g = ix.get(eid);
          if (!g) continue;
          ({ sid, meta } = splitEnvelope(g.meta));
          if (withVec) vector = g.vector;
        }
        out.push({ eid, sid, distance: r.distances[i], meta, vector });
      }
      return out;
    });
  }

  /** Records of ids [{eid, sid}]: {vector, meta} or null (absent / another string id). */
  getMany(def, ids) {
    return this._run(def, (ix) => ids.map((id) => {
      const g = ix.get(id.eid);
      if (!g) return null;
      const { sid, meta } = splitEnvelope(g.meta);
      if (id.sid !== null && sid !== id.sid) return null;
      return { vector: g.vector, meta };
    }));
  }

  /** Delete ids [{eid, sid}]: true deleted, false absent. */
  deleteMany(def, ids) {
    return this._run(def, (ix) => ids.map((id) => {
      if (id.sid !== null) {
        const g = ix.get(id.eid);
        if (!g || splitEnvelope(g.meta).sid !== id.sid) return false;
      }
      return ix.delete(id.eid);
    }), true);
  }

  stats(def) {
    return this._run(def, (ix) => {
      const s = ix.stats();
      return {
        count: s.count, deleted: s.deleted, memory_bytes: s.memoryBytes, simd: s.simd, open_ms: this.openMs,
        open_reinserted: s.openReinserted, wasm_memory: this.qz.memoryBytes(), instance: this.instance,
      };
    });
  }

  /** Remove this shard's data for good (the index was dropped). */
  drop(generation) {
    try {
      this._close();
      new SqlStore(this.ctx.storage).destroy();
      this.tomb = Math.max(this.tomb, generation);
      this.def = null;
      this.ctx.storage.transactionSync(() => {
        this.sql.exec('DELETE FROM qz_meta');
        this.sql.exec('INSERT INTO qz_meta (k, v) VALUES (?, ?)', 'dropped', String(this.tomb));
      });
      return { ok: true };
    } catch (e) {
      return { error: errorOf(e) };
    }
  }
}

export class QuartzCatalog extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec('CREATE TABLE IF NOT EXISTS qz_meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)');
    this.sql.exec('CREATE TABLE IF NOT EXISTS qz_indexes (name TEXT PRIMARY KEY, def TEXT NOT NULL)');
  }
  _nextGen() {
    const g = Number(metaRow(this.sql, 'next_generation') || 1);
    this.sql.exec('INSERT OR REPLACE INTO qz_meta (k, v) VALUES (?, ?)', 'next_generation', String(g + 1));
    return g;
  }
  _insert(d) {
    let def;
    this.ctx.storage.transactionSync(() => {
      def = { ...d, generation: this._nextGen() };
      this.sql.exec('INSERT INTO qz_indexes (name, def) VALUES (?, ?)', def.name, JSON.stringify(def));
    });
    return def;
  }
  _get(name) {
    const r = this.sql.exec('SELECT def FROM qz_indexes WHERE name = ?', name).toArray();
    return r.length ? JSON.parse(r[0].def) : null;
  }
  _ensureDefault(defaults) {
    if (!this._get('default')) this._insert({ ...defaults, name: 'default' });
  }
  get(name, defaults) {
    if (name === 'default') this._ensureDefault(defaults);
    return this._get(name);
  }
  list(defaults) {
    this._ensureDefault(defaults);
    return this.sql.exec('SELECT def FROM qz_indexes ORDER BY name').toArray().map((r) => JSON.parse(r.def));
  }
  create(d, defaults) {
    this._ensureDefault(defaults);
    if (this._get(d.name)) return { error: { status: 409, code: 'already_exists', message: `index ${d.name} already exists` } };
    return { ok: this._insert(d) };
  }
  /** Remove the definition; the caller then drops the shards. */
  drop(name) {
    if (name === 'default')
      return { error: { status: 409, code: 'conflict', message: 'the default index cannot be dropped' } };
    const def = this._get(name);
    if (!def) return { error: { status: 404, code: 'not_found', message: `no index named ${name}` } };
    this.sql.exec('DELETE FROM qz_indexes WHERE name = ?', name);
    return { ok: def };
  }
}

// Key-value keys: "u" + KEY up to 510 bytes, else "h" + two 64-bit hashes
// with KEY, 0x00 in front of the value (as quartzd).
const KV_DIRECT_MAX = 510;
const enc = new TextEncoder();
function hex64(x) { return x.toString(16).padStart(16, '0'); }

export class QuartzKV extends DurableObject {
  constructor(ctx, env) {
    super(ctx, env);
    this.key = ctx.id.toString();
    ctx.blockConcurrencyWhile(async () => {
      const qz = await quartz();
      closePrevious(this.key);
      this.ix = qz.open(new SqlStore(ctx.storage), { dimensions: 1, metric: 'l2' });
      adopt(this.key, this.ix);
    });
  }
  _key(key) {
    const b = enc.encode(key);
    if (b.length <= KV_DIRECT_MAX) return { k: 'u' + key, hashed: false, b };
    return { k: 'h' + hex64(fnv1a64(b)) + hex64(fnv1a64(b, 0x9e3779b97f4a7c15n)), hashed: true, b };
  }
  _read(k) {
    const v = this.ix.kvGet(k.k);
    if (!v) return null;
    if (!k.hashed) return td.decode(v);
    const n = k.b.length;
    if (v.length < n + 1 || v[n] !== 0) return null;
    for (let i = 0; i < n; i++) if (v[i] !== k.b[i]) return null;
    return td.decode(v.subarray(n + 1));
  }
  put(key, text) {
    try {
      const k = this._key(key);
      let val = enc.encode(text);
      if (k.hashed) {
        if (this.ix.kvGet(k.k) && this._read(k) === null)
          throw new HttpError(409, 'id_collision', 'key maps to a stored key of another long key');
        const v2 = new Uint8Array(k.b.length + 1 + val.length);
        v2.set(k.b, 0);
        v2.set(val, k.b.length + 1);
        val = v2;
      }
      if (val.length > 16 * 1024 * 1024)
        throw new HttpError(422, 'out_of_range', `value is ${val.length} bytes, the limit is ${16 * 1024 * 1024}`);
      this.ix.kvPut(k.k, val);
      return { ok: true };
    } catch (e) {
      return { error: errorOf(e) };
    }
  }
  get(key) {
    try {
      return { ok: this._read(this._key(key)) };
    } catch (e) {
      return { error: errorOf(e) };
    }
  }
  del(key) {
    try {
      const k = this._key(key);
      if (this._read(k) === null) return { ok: false };
      return { ok: this.ix.kvDelete(k.k) };
    } catch (e) {
      return { error: errorOf(e) };
    }
  }
}
