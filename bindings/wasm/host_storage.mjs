// host_storage.mjs - the JavaScript side of lib/storage/storage_host.c.
//
// The C backend calls Module.qzHost.<method>(handle, ...) synchronously (C
// cannot await). HostRegistry implements those methods over "stores": a
// store is an ordered byte-key -> byte-value map split into the engine's
// four tables, with three synchronous operations:
//
//   get(table, key: Uint8Array) -> Uint8Array | undefined
//   scan(table, prefix: Uint8Array) -> iterator of [key, value], ascending bytes
//   apply(ops) -> applies [{table, clear: true} | {table, key, value|null}]
//                 all or nothing; returns only once they are stored
//
// A read-write transaction keeps its writes in an overlay here and hands
// them to apply() at commit: over a Durable Object that is one
// ctx.storage.transactionSync (SqlStore), over MapStore a plain update.
// A read-only transaction reads the last committed state.
//
// Status codes returned to C are qz_status values: 0, QZ_ENOTFOUND (-3) for
// an absent key or the end of a scan, QZ_EIO (-5) when the store threw (the
// message is kept in registry.lastError), QZ_ENOMEM (-2) for a RangeError.

const ENOTFOUND = -3, EIO = -5, ENOMEM = -2, EINVAL = -1;
const TABLES = 4;

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
/** Lowercase hex of bytes: string order of two hex keys is their byte order. */
export function hexOf(b) {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i]];
  return s;
}

function startsWith(key, prefix) {
  if (key.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (key[i] !== prefix[i]) return false;
  return true;
}

function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** The in-memory store: one Map per table (hex key -> {key, value}). For
 *  tests, and for a QuartzIndex that needs no durability across processes
 *  but wants the durable code path. */
export class MapStore {
  constructor() {
    this.tables = Array.from({ length: TABLES }, () => new Map());
    this.commits = 0;
  }
  get(table, key) {
    const e = this.tables[table].get(hexOf(key));
    return e ? e.value : undefined;
  }
  *scan(table, prefix) {
    const t = this.tables[table];
    const ph = hexOf(prefix);
    const keys = [...t.keys()].filter((k) => k.startsWith(ph)).sort();
    for (const k of keys) {
      const e = t.get(k);
      if (e) yield [e.key, e.value];
    }
  }
  apply(ops) {
    for (const op of ops) {
      const t = this.tables[op.table];
      if (op.clear) t.clear();
      else if (op.value === null) t.delete(hexOf(op.key));
      else t.set(hexOf(op.key), { key: op.key, value: op.value });
    }
    this.commits++;
  }
  /** Rows and bytes held, for tests. */
  size() {
    let rows = 0, bytes = 0;
    for (const t of this.tables) for (const e of t.values()) { rows++; bytes += e.key.length + e.value.length; }
    return { rows, bytes };
  }
}

/** Rows of a Durable Object's SQLite storage hold at most 2 MB; values are
 *  split into parts of this size (the first in qz_rows, the rest in
 *  qz_parts). */
export const SQL_PART_BYTES = 1 << 20;
const SCAN_PAGE = 256;

function ab(u8) {
  // An ArrayBuffer holding exactly these bytes (SQL binds ArrayBuffer as BLOB).
  return u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength ? u8.buffer : u8.slice().buffer;
}

function prefixEnd(prefix) {
  // The smallest key greater than every key starting with prefix; null if none.
  const e = Uint8Array.from(prefix);
  for (let i = e.length - 1; i >= 0; i--) {
    if (e[i] !== 0xff) {
      e[i]++;
      return e.subarray(0, i + 1);
    }
  }
  return null;
}

/** A store over a Durable Object's storage (ctx.storage): its SQL API for
 *  rows, transactionSync for the all-or-nothing commit. Also works over any
 *  object with the same sql.exec / transactionSync shape. */
export class SqlStore {
  constructor(storage, { prefix = 'qz' } = {}) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,30}$/.test(prefix)) throw new TypeError('SqlStore: bad table prefix');
    this.storage = storage;
    this.sql = storage.sql;
    this.rows = prefix + '_rows';
    this.parts = prefix + '_parts';
    this.sql.exec(`CREATE TABLE IF NOT EXISTS ${this.rows} (t INTEGER NOT NULL, k BLOB NOT NULL, n INTEGER NOT NULL,
      v BLOB NOT NULL, PRIMARY KEY (t, k)) WITHOUT ROWID`);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS ${this.parts} (t INTEGER NOT NULL, k BLOB NOT NULL, p INTEGER NOT NULL,
      v BLOB NOT NULL, PRIMARY KEY (t, k, p)) WITHOUT ROWID`);
    this.commits = 0;
  }
  _value(table, key, first, n) {
    if (n <= 1) return new Uint8Array(first);
    const parts = [new Uint8Array(first)];
    let len = parts[0].length;
    for (const r of this.sql.exec(`SELECT v FROM ${this.parts} WHERE t = ? AND k = ? ORDER BY p`, table, ab(key))) {
      const u = new Uint8Array(r.v);
      parts.push(u);
      len += u.length;
    }
    if (parts.length !== n) throw new Error(`value of ${n} parts has ${parts.length}`);
    const out = new Uint8Array(len);
    let off = 0;
    for (const p of parts) { out.set(p, off); off += p.length; }
    return out;
  }
  get(table, key) {
    const rows = this.sql.exec(`SELECT n, v FROM ${this.rows} WHERE t = ? AND k = ?`, table, ab(key)).toArray();
    if (!rows.length) return undefined;
    return this._value(table, key, rows[0].v, rows[0].n);
  }
  *scan(table, prefix) {
    // Keyset pages: no cursor stays open between rows, so the caller may run
    // other statements while it walks the scan.
    const end = prefix.length ? prefixEnd(prefix) : null;
    let after = null;
    for (;;) {
      const args = [table];
      let where = 't = ?';
      if (after) { where += ' AND k > ?'; args.push(ab(after)); }
      else if (prefix.length) { where += ' AND k >= ?'; args.push(ab(prefix)); }
      if (end) { where += ' AND k < ?'; args.push(ab(end)); }
      const page = this.sql.exec(`SELECT k, n, v FROM ${this.rows} WHERE ${where} ORDER BY k LIMIT ${SCAN_PAGE}`,
        ...args).toArray();
      for (const r of page) {
        const k = new Uint8Array(r.k);
        yield [k, this._value(table, k, r.v, r.n)];
      }
      if (page.length < SCAN_PAGE) return;
      after = new Uint8Array(page[page.length - 1].k);
    }
  }
  apply(ops) {
    const sql = this.sql;
    this.storage.transactionSync(() => {
      for (const op of ops) {
        if (op.clear) {
          sql.exec(`DELETE FROM ${this.rows} WHERE t = ?`, op.table);
          sql.exec(`DELETE FROM ${this.parts} WHERE t = ?`, op.table);
          continue;
        }
        const k = ab(op.key);
        sql.exec(`DELETE FROM ${this.parts} WHERE t = ? AND k = ?`, op.table, k);
        if (op.value === null) {
          sql.exec(`DELETE FROM ${this.rows} WHERE t = ? AND k = ?`, op.table, k);
          continue;
        }
        const v = op.value, n = Math.max(1, Math.ceil(v.length / SQL_PART_BYTES));
        sql.exec(`INSERT OR REPLACE INTO ${this.rows} (t, k, n, v) VALUES (?, ?, ?, ?)`, op.table, k, n,
          ab(v.subarray(0, SQL_PART_BYTES)));
        for (let p = 1; p < n; p++)
          sql.exec(`INSERT INTO ${this.parts} (t, k, p, v) VALUES (?, ?, ?, ?)`, op.table, k, p,
            ab(v.subarray(p * SQL_PART_BYTES, (p + 1) * SQL_PART_BYTES)));
      }
    });
    this.commits++;
  }
  /** Remove every row this store holds (an index being dropped). */
  destroy() {
    this.storage.transactionSync(() => {
      this.sql.exec(`DROP TABLE IF EXISTS ${this.rows}`);
      this.sql.exec(`DROP TABLE IF EXISTS ${this.parts}`);
    });
  }
}

function statusOf(e) {
  return e instanceof RangeError ? ENOMEM : EIO;
}

/** The object installed as Module.qzHost: handles -> stores, transactions,
 *  scan cursors. One registry per wasm instance. */
export class HostRegistry {
  constructor() {
    this.module = null; // set once the wasm instance exists
    this.stores = new Map();
    this.nextHandle = 1;
    this.nextId = 1;
    this.pending = null;
    this.lastError = null;
  }
  heap() {
    return this.module.HEAPU8;
  }
  bytes(p, n) {
    return this.heap().slice(p, p + n);
  }
  register(store) {
    const h = this.nextHandle++;
    this.stores.set(h, { store, txns: new Map(), cursors: new Map() });
    return h;
  }
  fail(e) {
    this.lastError = e && e.message ? e.message : String(e);
    return statusOf(e);
  }
  _s(h) {
    const s = this.stores.get(h);
    if (!s) throw new Error(`no host store with handle ${h}`);
    return s;
  }
  // A value as the transaction sees it: undefined when absent.
  _read(s, txn, table, key) {
    if (!txn.ro) {
      const e = txn.ov[table].get(hexOf(key));
      if (e) return e.value === null ? undefined : e.value;
      if (txn.cleared[table]) return undefined;
    }
    return s.store.get(table, key);
  }

  begin(h, ro) {
    try {
      const s = this._s(h);
      const id = this.nextId++;
      s.txns.set(id, ro ? { ro: true } : {
        ro: false,
        ov: Array.from({ length: TABLES }, () => new Map()),
        cleared: new Array(TABLES).fill(false),
      });
      return id;
    } catch (e) { return this.fail(e); }
  }
  get(h, t, table, kp, klen) {
    try {
      const s = this._s(h);
      const v = this._read(s, s.txns.get(t), table, this.bytes(kp, klen));
      if (v === undefined) return ENOTFOUND;
      this.pending = v;
      return v.length;
    } catch (e) { return this.fail(e); }
  }
  take(h, dst) {
    const v = this.pending;
    this.pending = null;
    if (v && v.length) this.heap().set(v, dst);
  }
  put(h, t, table, kp, klen, vp, vlen) {
    try {
      const txn = this._s(h).txns.get(t);
      if (txn.ro) return EINVAL;
      const key = this.bytes(kp, klen);
      txn.ov[table].set(hexOf(key), { key, value: this.bytes(vp, vlen) });
      return 0;
    } catch (e) { return this.fail(e); }
  }
  del(h, t, table, kp, klen) {
    try {
      const s = this._s(h);
      const txn = s.txns.get(t);
      if (txn.ro) return EINVAL;
      const key = this.bytes(kp, klen);
      if (this._read(s, txn, table, key) === undefined) return ENOTFOUND;
      txn.ov[table].set(hexOf(key), { key, value: null });
      return 0;
    } catch (e) { return this.fail(e); }
  }
  clear(h, t, table) {
    try {
      const txn = this._s(h).txns.get(t);
      if (txn.ro) return EINVAL;
      txn.ov[table].clear();
      txn.cleared[table] = true;
      return 0;
    } catch (e) { return this.fail(e); }
  }
  scanOpen(h, t, table, pp, plen) {
    try {
      const s = this._s(h);
      const txn = s.txns.get(t);
      const prefix = this.bytes(pp, plen);
      const base = !txn.ro && txn.cleared[table] ? [][Symbol.iterator]() : s.store.scan(table, prefix);
      let over = [];
      if (!txn.ro) {
        const ph = hexOf(prefix);
        over = [...txn.ov[table].entries()].filter(([hx]) => hx.startsWith(ph)).sort((a, b) => (a[0] < b[0] ? -1 : 1))
          .map(([, e]) => e);
      }
      const id = this.nextId++;
      s.cursors.set(id, { base, over, oi: 0, next: null, baseDone: false, cur: null });
      return id;
    } catch (e) { return this.fail(e); }
  }
  scanNext(h, c) {
    try {
      const cur = this._s(h).cursors.get(c);
      for (;;) {
        if (!cur.next && !cur.baseDone) {
          const r = cur.base.next();
          if (r.done) cur.baseDone = true;
          else cur.next = { key: r.value[0], value: r.value[1] };
        }
        const o = cur.oi < cur.over.length ? cur.over[cur.oi] : null;
        let pick;
        if (o && (!cur.next || compareBytes(o.key, cur.next.key) <= 0)) {
          if (cur.next && compareBytes(o.key, cur.next.key) === 0) cur.next = null; // overlay replaces it
          cur.oi++;
          if (o.value === null) continue; // deleted in this transaction
          pick = o;
        } else if (cur.next) {
          pick = cur.next;
          cur.next = null;
        } else {
          cur.cur = null;
          return ENOTFOUND;
        }
        cur.cur = pick;
        return pick.key.length;
      }
    } catch (e) { return this.fail(e); }
  }
  scanVlen(h, c) {
    return this._s(h).cursors.get(c).cur.value.length;
  }
  scanCopy(h, c, kdst, vdst) {
    const cur = this._s(h).cursors.get(c).cur;
    const heap = this.heap();
    heap.set(cur.key, kdst);
    if (cur.value.length) heap.set(cur.value, vdst);
  }
  scanClose(h, c) {
    const s = this.stores.get(h);
    if (s) s.cursors.delete(c);
  }
  commit(h, t) {
    try {
      const s = this._s(h);
      const txn = s.txns.get(t);
      s.txns.delete(t);
      if (txn.ro) return 0;
      const ops = [];
      for (let table = 0; table < TABLES; table++) {
        if (txn.cleared[table]) ops.push({ table, clear: true });
        for (const e of txn.ov[table].values()) ops.push({ table, key: e.key, value: e.value });
      }
      if (ops.length) s.store.apply(ops);
      return 0;
    } catch (e) { return this.fail(e); }
  }
  abort(h, t) {
    const s = this.stores.get(h);
    if (s) s.txns.delete(t);
  }
  close(h) {
    this.stores.delete(h);
  }
}
