// worker.js - the QuartzDB REST API (docs/rest-api.md) as a Cloudflare
// Worker over Durable Objects (objects.js). The Worker authenticates,
// parses and checks each request, routes a vector write to the shard that
// owns its id, fans a search out to every shard of the index and merges the
// top k, and turns errors into the same bodies as quartzd.
//
// Bindings: SHARDS, CATALOG, KV (Durable Object namespaces); API keys from
// QUARTZ_API_KEY (read-write), QUARTZ_API_KEY_RO (read-only) and/or
// QUARTZ_API_KEYS ("KEY rw" / "KEY ro" lines, as quartzd's key file), set as
// secrets; QUARTZ_SHARDS (shards of a new index, default 4),
// QUARTZ_MAX_BODY (bytes, default 32 MiB), QUARTZ_MAX_BATCH (default 10000).

import {
  HttpError, errorOf, idFromJson, idFromText, idJson, idText, pathText, parseObject, readVector, fieldUint,
  fieldBool, metaText, validIndexName, scoreOf, shardOf, METRICS, MAX_K, MAX_EF, MAX_M, MAX_DIM, MAX_METADATA,
} from './rest.js';
import { quartz } from './objects.js';

export { QuartzShard, QuartzCatalog, QuartzKV } from './objects.js';

const VERSION_FALLBACK = '1.0.0';
const enc = new TextEncoder();

// ---- configuration ----

function config(env) {
  const keys = new Map();
  const add = (k, role) => { if (k) keys.set(k, role); };
  add(env.QUARTZ_API_KEY, 'rw');
  add(env.QUARTZ_API_KEY_RO, 'ro');
  for (const line of String(env.QUARTZ_API_KEYS || '').split(/[\n,]/)) {
    const [k, role] = line.trim().split(/\s+/);
    if (k && !k.startsWith('#')) add(k, role === 'ro' ? 'ro' : 'rw');
  }
  const int = (v, d, lo, hi) => {
    const n = Number(v);
    return v && Number.isInteger(n) && n >= lo && n <= hi ? n : d;
  };
  return {
    keys,
    shards: int(env.QUARTZ_SHARDS, 4, 1, 64),
    maxBody: int(env.QUARTZ_MAX_BODY, 32 * 1024 * 1024, 1024, 1 << 30),
    maxBatch: int(env.QUARTZ_MAX_BATCH, 10000, 1, 1000000),
  };
}

function defaults(cfg) {
  return { dimension: 384, metric: 'cosine', M: 16, ef_construction: 200, ef_search: 64, shards: cfg.shards };
}

// ---- metrics (this isolate's counters) ----

const counters = new Map();
function observe(route, status, ms) {
  const k = `${route}\u0000${status}`;
  const c = counters.get(k) || { n: 0, ms: 0 };
  c.n++;
  c.ms += ms;
  counters.set(k, c);
}
function metricsText() {
  let s = '# HELP quartz_requests_total Requests served by this Worker isolate.\n# TYPE quartz_requests_total counter\n';
  const rows = [...counters.entries()].sort();
  for (const [k, c] of rows) {
    const [route, status] = k.split('\u0000');
    s += `quartz_requests_total{route="${route}",status="${status}"} ${c.n}\n`;
  }
  s += '# HELP quartz_request_seconds_sum Time spent serving requests.\n# TYPE quartz_request_seconds_sum counter\n';
  for (const [k, c] of rows) {
    const [route, status] = k.split('\u0000');
    s += `quartz_request_seconds_sum{route="${route}",status="${status}"} ${(c.ms / 1000).toFixed(6)}\n`;
  }
  return s;
}

// ---- responses ----

function json(status, body, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}
function errorResponse(e) {
  const r = errorOf(e);
  if (r.status === 500) console.error(r.message);
  return json(r.status, { error: { code: r.code, message: r.message } }, e.headers || {});
}
function fail(err) {
  throw new HttpError(err.status, err.code, err.message);
}

// ---- routing (as quartzd's http.c resolve) ----

function resolveVector(p) {
  const simple = { insert: 'POST', upsert: 'POST', 'batch-insert': 'POST', search: 'POST', get: 'POST',
    delete: 'POST', stats: 'GET' };
  if (Object.hasOwn(simple, p)) return { op: p, allow: simple[p] };
  if (p.startsWith('get/') && p.length > 4 && !p.includes('/', 4)) return { op: 'get1', allow: 'GET', arg: p.slice(4) };
  if (p.startsWith('delete/') && p.length > 7 && !p.includes('/', 7)) return { op: 'delete1', allow: 'DELETE', arg: p.slice(7) };
  return null;
}

function resolve(path) {
  if (path === '/health') return { kind: 'health', allow: 'GET', name: 'health' };
  if (path === '/metrics') return { kind: 'metrics', allow: 'GET', name: 'metrics' };
  if (path === '/api/put') return { kind: 'kv', op: 'put', allow: 'POST', name: 'kv_put' };
  if (path.startsWith('/api/get/') && path.length > 9) return { kind: 'kv', op: 'get', allow: 'GET', arg: path.slice(9), name: 'kv_get' };
  if (path.startsWith('/api/delete/') && path.length > 12)
    return { kind: 'kv', op: 'delete', allow: 'DELETE', arg: path.slice(12), name: 'kv_delete' };
  if (path === '/api/indexes') return { kind: 'indexes', allow: 'GET, POST', name: 'indexes' };
  if (path.startsWith('/api/vector/')) {
    const v = resolveVector(path.slice(12));
    return v ? { kind: 'vector', index: null, ...v, name: 'vector_' + v.op } : null;
  }
  if (path.startsWith('/api/indexes/') && path.length > 13) {
    const rest = path.slice(13);
    const slash = rest.indexOf('/');
    if (slash < 0) return { kind: 'index', index: rest, allow: 'GET, DELETE', name: 'index' };
    if (rest.startsWith('/vector/', slash)) {
      const v = resolveVector(rest.slice(slash + 8));
      return v ? { kind: 'vector', index: rest.slice(0, slash), ...v, name: 'vector_' + v.op } : null;
    }
  }
  return null;
}

function isRead(rt, method) {
  if (method === 'GET' || method === 'HEAD') return true;
  return method === 'POST' && rt && rt.kind === 'vector' && (rt.op === 'search' || rt.op === 'get');
}

function methodAllowed(allow, method) {
  if (method === 'HEAD') method = 'GET';
  return allow.split(', ').includes(method);
}

function presentedKey(req) {
  const a = req.headers.get('Authorization');
  if (a !== null) {
    const m = /^Bearer\s+(.*)$/i.exec(a.trim());
    return m ? m[1].trim() : a.trim();
  }
  const x = req.headers.get('X-API-Key');
  return x !== null ? x.trim() : null;
}

function sameKey(a, b) {
  const x = enc.encode(a), y = enc.encode(b);
  if (x.length !== y.length) return false;
  if (crypto.subtle.timingSafeEqual) return crypto.subtle.timingSafeEqual(x, y);
  let d = 0;
  for (let i = 0; i < x.length; i++) d |= x[i] ^ y[i];
  return d === 0;
}

function roleOf(cfg, key) {
  if (!key) return null;
  for (const [k, role] of cfg.keys) if (sameKey(k, key)) return role;
  return null;
}

/** The body as text, or 413 once it passes the limit (the rest is read and
 *  discarded, so the client sees the status rather than a reset). */
async function readBody(req, limit) {
  const cl = req.headers.get('Content-Length');
  if (!req.body) return '';
  const reader = req.body.getReader();
  const parts = [];
  let n = 0, over = cl !== null && Number(cl) > limit;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > limit) over = true;
    if (!over) parts.push(value);
  }
  if (over)
    throw new HttpError(413, 'payload_too_large', `the request body is larger than the limit of ${limit} bytes`,
      { Connection: 'close' });
  const all = new Uint8Array(n);
  let off = 0;
  for (const p of parts) { all.set(p, off); off += p.length; }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(all);
  } catch {
    throw new HttpError(400, 'invalid_json', 'the body is not valid UTF-8');
  }
}

// ---- index definitions ----

class Ctx {
  constructor(env, cfg) {
    this.env = env;
    this.cfg = cfg;
    this.catalog = env.CATALOG.get(env.CATALOG.idFromName('catalog'));
  }
  shard(def, i) {
    return this.env.SHARDS.get(this.env.SHARDS.idFromName(`${def.name}#${i}`));
  }
  kv() {
    return this.env.KV.get(this.env.KV.idFromName('kv'));
  }
}

// Definitions cached in the isolate; a shard that finds one stale makes the
// Worker read the catalog again.
const defCache = new Map();

async function lookup(c, name, fresh = false) {
  if (!fresh && defCache.has(name)) return defCache.get(name);
  const def = await c.catalog.get(name, defaults(c.cfg));
  if (def) defCache.set(name, def);
  else defCache.delete(name);
  return def;
}

function noIndex(name) {
  return new HttpError(404, 'not_found', `no index named ${name}`);
}

/** Run fn(def) -> shard replies; when any reply is stale, reload the
 *  definition once and run again. */
async function withDef(c, name, fn) {
  let def = await lookup(c, name);
  if (!def) throw noIndex(name);
  for (let attempt = 0; ; attempt++) {
    const replies = await fn(def);
    if (!replies.some((r) => r && r.stale)) {
      for (const r of replies) if (r && r.error) fail(r.error);
      return { def, replies };
    }
    if (attempt) throw noIndex(name);
    def = await lookup(c, name, true);
    if (!def) throw noIndex(name);
  }
}

async function shardStats(c, def) {
  const { replies } = await withDef(c, def.name, (d) =>
    Promise.all(Array.from({ length: d.shards }, (_, i) => c.shard(d, i).stats(d))));
  return replies.map((r) => r.ok);
}

async function describe(c, def) {
  let stats;
  try {
    stats = await shardStats(c, def);
  } catch (e) {
    if (e instanceof HttpError && e.status === 404) return null; // dropped meanwhile
    throw e;
  }
  const sum = (k) => stats.reduce((a, s) => a + s[k], 0);
  return {
    d: {
      name: def.name, dimension: def.dimension, metric: def.metric, M: def.M, ef_construction: def.ef_construction,
      ef_search: def.ef_search, count: sum('count'), deleted: sum('deleted'), shards: def.shards,
      capacity: def.capacity || 0,
    },
    stats,
  };
}

// ---- routes ----

async function health(c) {
  const defs = await c.catalog.list(defaults(c.cfg));
  const qz = await quartz();
  return json(200, { status: 'ok', version: qz.version || VERSION_FALLBACK, indexes: defs.length });
}

async function indexes(c, method, body) {
  if (method === 'POST') {
    const j = parseObject(body);
    if (typeof j.name !== 'string')
      throw new HttpError(400, 'invalid_argument', j.name === undefined ? 'missing field "name"' : '"name" must be a string');
    if (!validIndexName(j.name))
      throw new HttpError(400, 'invalid_argument', `bad index name "${j.name.slice(0, 80)}": names match [A-Za-z0-9_-]{1,64}`);
    const dimension = fieldUint(j, 'dimension', true, 1, MAX_DIM);
    const M = fieldUint(j, 'M', false, 2, MAX_M);
    const efc = fieldUint(j, 'ef_construction', false, 1, MAX_EF);
    const efs = fieldUint(j, 'ef_search', false, 1, MAX_EF);
    const shards = fieldUint(j, 'shards', false, 1, 64);
    const capacity = fieldUint(j, 'capacity', false, 1, 100000000);
    let metric = 'cosine';
    if (j.metric !== undefined && j.metric !== null) {
      if (typeof j.metric !== 'string') throw new HttpError(400, 'invalid_argument', '"metric" must be a string');
      if (!METRICS.includes(j.metric))
        throw new HttpError(400, 'invalid_argument', `unknown metric "${j.metric.slice(0, 40)}" (cosine, l2, ip or hamming)`);
      metric = j.metric;
    }
    const d = { name: j.name, dimension, metric, M: M ?? 16, ef_construction: efc ?? 200, ef_search: efs ?? 64,
      shards: shards ?? c.cfg.shards, capacity: capacity ?? 0 };
    const r = await c.catalog.create(d, defaults(c.cfg));
    if (r.error) fail(r.error);
    defCache.set(r.ok.name, r.ok);
    const desc = await describe(c, r.ok);
    return json(201, { index: desc ? desc.d : null });
  }
  const defs = await c.catalog.list(defaults(c.cfg));
  const out = [];
  for (const def of defs) {
    defCache.set(def.name, def);
    const desc = await describe(c, def);
    if (desc) out.push(desc.d);
  }
  return json(200, { indexes: out });
}

async function oneIndex(c, rawName, method) {
  const name = pathText(rawName, 'index name');
  if (!validIndexName(name))
    throw new HttpError(404, 'not_found', `no index named ${name.slice(0, 80)} (names match [A-Za-z0-9_-]{1,64})`);
  if (method === 'DELETE') {
    const r = await c.catalog.drop(name);
    if (r.error) fail(r.error);
    defCache.delete(name);
    const def = r.ok;
    const drops = await Promise.all(Array.from({ length: def.shards }, (_, i) => c.shard(def, i).drop(def.generation)));
    for (const d of drops) if (d.error) fail(d.error);
    return json(200, { deleted: true, name });
  }
  const def = await lookup(c, name, true);
  if (!def) throw noIndex(name);
  const desc = await describe(c, def);
  if (!desc) throw noIndex(name);
  return json(200, { index: desc.d });
}

function groupByShard(def, items) {
  const groups = Array.from({ length: def.shards }, () => []);
  for (const it of items) groups[shardOf(it.eid, def.shards)].push(it);
  return groups;
}

async function putOne(c, name, body, upsert) {
  const j = parseObject(body);
  const id = idFromJson(j.id);
  let def = await lookup(c, name);
  if (!def) throw noIndex(name);
  const vector = readVector(j.vector, def.dimension, 'vector', -1, def.metric);
  const meta = metaText(j.metadata);
  const row = { eid: id.eid, sid: id.sid, vector, meta };
  // the envelope's size, as quartzd checks it
  const envLen = (meta === null ? 0 : enc.encode(meta).length) + (id.sid === null ? 0 : enc.encode(id.sid).length + 2);
  if (envLen > MAX_METADATA)
    throw new HttpError(422, 'out_of_range', `metadata is ${envLen} bytes, the limit is ${MAX_METADATA}`);
  await withDef(c, name, async (d) => {
    if (d.dimension !== def.dimension) readVector(j.vector, d.dimension, 'vector');
    return [await c.shard(d, shardOf(id.eid, d.shards)).put(d, row, upsert)];
  });
  return upsert ? json(200, { id: idJson(id), upserted: true }) : json(201, { id: idJson(id), inserted: true });
}

async function batchInsert(c, name, body) {
  const j = parseObject(body);
  const rows = j.vectors;
  if (!Array.isArray(rows))
    throw new HttpError(400, 'invalid_argument', rows === undefined ? 'missing field "vectors"' : '"vectors" must be an array');
  if (j.upsert !== undefined && typeof j.upsert !== 'boolean')
    throw new HttpError(400, 'invalid_argument', '"upsert" must be true or false');
  const upsert = j.upsert === true;
  if (rows.length > c.cfg.maxBatch)
    throw new HttpError(413, 'payload_too_large', `the batch has ${rows.length} vectors, the limit is ${c.cfg.maxBatch}`);
  const def0 = await lookup(c, name);
  if (!def0) throw noIndex(name);
  const parsed = [];
  const seen = new Map();
  for (let i = 0; i < rows.length; i++) {
    const pre = `row ${i}: `;
    const r = rows[i];
    if (r === null || typeof r !== 'object' || Array.isArray(r))
      throw new HttpError(400, 'invalid_argument', `${pre}a row must be an object {id, vector, metadata?}`);
    const id = idFromJson(r.id, pre);
    const vector = readVector(r.vector, def0.dimension, 'vector', i, def0.metric);
    const meta = metaText(r.metadata);
    const envLen = (meta === null ? 0 : enc.encode(meta).length) + (id.sid === null ? 0 : enc.encode(id.sid).length + 2);
    if (envLen > MAX_METADATA)
      throw new HttpError(422, 'out_of_range', `${pre}metadata is ${envLen} bytes, the limit is ${MAX_METADATA}`);
    parsed.push({ row: i, eid: id.eid, sid: id.sid, meta, vector });
  }
  // duplicates inside the batch: the first repeated engine id, by row
  const dupes = [];
  for (const p of parsed) {
    const k = p.eid.toString();
    if (seen.has(k)) dupes.push([seen.get(k), p]);
    else seen.set(k, p);
  }
  if (dupes.length) {
    dupes.sort((x, y) => (x[0].eid < y[0].eid ? -1 : x[0].eid > y[0].eid ? 1 : x[1].row - y[1].row));
    const [a, b] = dupes[0];
    if (a.sid !== null && b.sid !== null && a.sid !== b.sid)
      throw new HttpError(409, 'id_collision', `row ${b.row}: id ${idText(b)} maps to the same engine id as row ${a.row}`);
    throw new HttpError(409, 'already_exists',
      `row ${b.row}: id ${idText(b)} appears twice in the batch (rows ${a.row} and ${b.row})`);
  }
  await withDef(c, name, async (def) => {
    if (def.dimension !== def0.dimension) rows.forEach((r, i) => readVector(r.vector, def.dimension, 'vector', i));
    const groups = groupByShard(def, parsed);
    const slim = groups.map((g) => g.map(({ row, eid, sid }) => ({ row, eid, sid })));
    // phase 1: every shard checks its rows; nothing is written unless all pass
    const checks = await Promise.all(groups.map((g, i) => (g.length ? c.shard(def, i).batchCheck(def, slim[i], upsert) : { ok: true })));
    if (checks.some((r) => r.stale || r.error)) {
      // report the error of the lowest row
      const errs = checks.filter((r) => r.error).map((r) => r.error);
      if (errs.length && !checks.some((r) => r.stale)) {
        errs.sort((x, y) => rowOf(x.message) - rowOf(y.message));
        fail(errs[0]);
      }
      return checks;
    }
    // phase 2
    return Promise.all(groups.map((g, i) => {
      if (!g.length) return { ok: 0 };
      const vecs = new Float32Array(g.length * def.dimension);
      g.forEach((r, k) => vecs.set(r.vector, k * def.dimension));
      return c.shard(def, i).batchApply(def, g.map(({ row, eid, sid, meta }) => ({ row, eid, sid, meta })), vecs, upsert);
    }));
  });
  return json(201, { inserted: parsed.length, ids: parsed.map(idJson) });
}

function rowOf(msg) {
  const m = /^row (\d+):/.exec(msg);
  return m ? Number(m[1]) : Infinity;
}

async function search(c, name, body) {
  const j = parseObject(body);
  const def0 = await lookup(c, name);
  if (!def0) throw noIndex(name);
  const q = readVector(j.query, def0.dimension, 'query');
  let k = fieldUint(j, 'k', false, 1, MAX_K);
  const ef = fieldUint(j, 'ef', false, 1, MAX_EF) ?? 0;
  if (k === undefined) k = 10;
  const withMeta = fieldBool(j, 'include_metadata', true);
  const withVec = fieldBool(j, 'include_vectors', false);
  let filter = null;
  if (j.filter_ids !== undefined && j.filter_ids !== null) {
    if (!Array.isArray(j.filter_ids)) throw new HttpError(400, 'invalid_argument', '"filter_ids" must be an array of ids');
    filter = j.filter_ids.map((v, i) => idFromJson(v, `filter_ids[${i}]: `).eid);
  }
  const { def, replies } = await withDef(c, name, (d) => {
    const calls = [];
    for (let i = 0; i < d.shards; i++) {
      let f = null;
      if (filter) {
        f = filter.filter((e) => shardOf(e, d.shards) === i);
        if (!f.length) { calls.push({ ok: [] }); continue; }
        f = BigUint64Array.from(f);
      }
      calls.push(c.shard(d, i).search(d, q, k, ef, f, withMeta, withVec));
    }
    return Promise.all(calls);
  });
  const all = replies.flatMap((r) => r.ok);
  all.sort((a, b) => a.distance - b.distance || (a.eid < b.eid ? -1 : a.eid > b.eid ? 1 : 0));
  const top = all.slice(0, k);
  const results = top.map((r) => {
    const o = { id: r.sid !== null ? r.sid : Number(r.eid), distance: r.distance, score: scoreOf(def.metric, r.distance, def.dimension) };
    if (withMeta) o.metadata = r.meta === null ? null : JSON.parse(r.meta);
    if (withVec) o.vector = Array.from(r.vector);
    return o;
  });
  let efUsed = ef || def.ef_search;
  if (efUsed < k) efUsed = k;
  return json(200, { results, count: results.length, k, ef: efUsed });
}

function parseIds(c, j) {
  const a = j.ids;
  if (!Array.isArray(a))
    throw new HttpError(400, 'invalid_argument', a === undefined ? 'missing field "ids"' : '"ids" must be an array of ids');
  if (a.length > c.cfg.maxBatch)
    throw new HttpError(413, 'payload_too_large', `the request names ${a.length} ids, the limit is ${c.cfg.maxBatch}`);
  return a.map((v, i) => idFromJson(v, `ids[${i}]: `));
}

/** Run op over ids grouped by shard; returns per-id replies in request order. */
async function perId(c, name, ids, op) {
  const { def, replies } = await withDef(c, name, (d) => {
    const groups = Array.from({ length: d.shards }, () => []);
    ids.forEach((id, i) => groups[shardOf(id.eid, d.shards)].push(i));
    return Promise.all(groups.map((g, s) =>
      (g.length ? c.shard(d, s)[op](d, g.map((i) => ids[i])).then((r) => (r.ok ? { ok: r.ok, g } : r)) : { ok: [], g })));
  });
  const out = new Array(ids.length);
  for (const r of replies) r.g.forEach((i, k) => { out[i] = r.ok[k]; });
  return { def, out };
}

function record(id, rec) {
  return { id: idJson(id), vector: Array.from(rec.vector), metadata: rec.meta === null ? null : JSON.parse(rec.meta) };
}

async function getOne(c, name, arg) {
  const id = idFromText(pathText(arg, 'id'));
  const { out } = await perId(c, name, [id], 'getMany');
  if (!out[0]) throw new HttpError(404, 'not_found', `no vector with id ${idText(id)}`);
  return json(200, record(id, out[0]));
}

async function getMany(c, name, body) {
  const ids = parseIds(c, parseObject(body));
  const { out } = await perId(c, name, ids, 'getMany');
  const vectors = [], missing = [];
  ids.forEach((id, i) => (out[i] ? vectors.push(record(id, out[i])) : missing.push(idJson(id))));
  return json(200, { vectors, missing });
}

async function deleteOne(c, name, arg) {
  const id = idFromText(pathText(arg, 'id'));
  const { out } = await perId(c, name, [id], 'deleteMany');
  if (!out[0]) throw new HttpError(404, 'not_found', `no vector with id ${idText(id)}`);
  return json(200, { id: idJson(id), deleted: true });
}

async function deleteMany(c, name, body) {
  const ids = parseIds(c, parseObject(body));
  const { out } = await perId(c, name, ids, 'deleteMany');
  const missing = [];
  let deleted = 0;
  ids.forEach((id, i) => (out[i] ? deleted++ : missing.push(idJson(id))));
  return json(200, { deleted, missing });
}

async function stats(c, name) {
  const def = await lookup(c, name, true);
  if (!def) throw noIndex(name);
  const desc = await describe(c, def);
  if (!desc) throw noIndex(name);
  const sum = (k) => desc.stats.reduce((a, s) => a + s[k], 0);
  return json(200, {
    index: desc.d, dimension: def.dimension, metric: def.metric, count: desc.d.count, deleted: desc.d.deleted,
    memory_bytes: sum('memory_bytes'), simd: desc.stats[0] ? desc.stats[0].simd : '',
    shards: desc.stats.map((s) => ({ count: s.count, open_ms: s.open_ms, open_reinserted: s.open_reinserted,
      instance: s.instance })),
    wasm_memory_bytes: Math.max(...desc.stats.map((s) => s.wasm_memory)),
  });
}

function kvKey(key) {
  const n = enc.encode(key).length;
  if (n === 0 || n > 1024) throw new HttpError(400, 'invalid_argument', `key must be 1 to 1024 bytes, got ${n}`);
  if (key.includes('\0')) throw new HttpError(400, 'invalid_argument', 'key must not contain a NUL character');
  return key;
}

async function kv(c, op, arg, body) {
  if (op === 'put') {
    const j = parseObject(body);
    if (typeof j.key !== 'string')
      throw new HttpError(400, 'invalid_argument', j.key === undefined ? 'missing field "key"' : '"key" must be a string');
    const key = kvKey(j.key);
    if (j.value === undefined) throw new HttpError(400, 'invalid_argument', 'missing field "value"');
    const r = await c.kv().put(key, JSON.stringify(j.value));
    if (r.error) fail(r.error);
    return json(200, { key, stored: true });
  }
  const key = kvKey(pathText(arg, 'key'));
  if (op === 'get') {
    const r = await c.kv().get(key);
    if (r.error) fail(r.error);
    if (r.ok === null) throw new HttpError(404, 'not_found', `no key ${JSON.stringify(key.slice(0, 80))}`);
    return json(200, { key, value: JSON.parse(r.ok) });
  }
  const r = await c.kv().del(key);
  if (r.error) fail(r.error);
  if (!r.ok) throw new HttpError(404, 'not_found', `no key ${JSON.stringify(key.slice(0, 80))}`);
  return json(200, { key, deleted: true });
}

async function vector(c, rt, body) {
  let name = 'default';
  if (rt.index !== null) {
    name = pathText(rt.index, 'index name');
    if (!validIndexName(name))
      throw new HttpError(404, 'not_found', `no index named ${name.slice(0, 80)} (names match [A-Za-z0-9_-]{1,64})`);
  }
  switch (rt.op) {
    case 'insert': return putOne(c, name, body, false);
    case 'upsert': return putOne(c, name, body, true);
    case 'batch-insert': return batchInsert(c, name, body);
    case 'search': return search(c, name, body);
    case 'get': return getMany(c, name, body);
    case 'get1': return getOne(c, name, rt.arg);
    case 'delete': return deleteMany(c, name, body);
    case 'delete1': return deleteOne(c, name, rt.arg);
    case 'stats': return stats(c, name);
    default: throw new HttpError(404, 'not_found', `no vector route ${rt.op}`);
  }
}

/** The path as the client sent it: no dot-segment folding, still
 *  percent-encoded (an id may be "." or ".."). */
function rawPath(url) {
  let p = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  const q = p.search(/[?#]/);
  if (q >= 0) p = p.slice(0, q);
  return p || '/';
}

let ridSeq = 0;
function requestId(req) {
  const r = req.headers.get('X-Request-Id');
  if (r && r.length <= 64 && /^[\x21-\x7e]+$/.test(r)) return r;
  return `qw-${Date.now().toString(16)}-${(++ridSeq).toString(16)}-${Math.floor(Math.random() * 0xffffffff).toString(16)}`;
}

async function handle(req, env) {
  const cfg = config(env);
  const c = new Ctx(env, cfg);
  const path = rawPath(req.url);
  const method = req.method;
  const rt = resolve(path);
  if (!rt || rt.kind !== 'health') {
    const key = presentedKey(req);
    const role = roleOf(cfg, key);
    if (!role) {
      throw new HttpError(401, 'unauthorized',
        cfg.keys.size === 0 ? 'no API key is configured on this Worker (set the QUARTZ_API_KEY secret)'
          : key ? 'the API key is not valid' : 'an API key is required (Authorization: Bearer KEY or X-API-Key: KEY)',
        { 'WWW-Authenticate': 'Bearer' });
    }
    if (role === 'ro' && !isRead(rt, method))
      throw new HttpError(403, 'forbidden',
        `the API key is read-only; ${method} ${rt ? rt.name : 'this route'} needs a read-write key`);
  }
  if (!rt) throw new HttpError(404, 'not_found', `no route ${method} ${path.slice(0, 200)}`);
  if (!methodAllowed(rt.allow, method))
    throw new HttpError(405, 'method_not_allowed', `${method} is not allowed on ${rt.name} (allowed: ${rt.allow})`,
      { Allow: rt.allow });
  const body = method === 'GET' || method === 'HEAD' ? '' : await readBody(req, cfg.maxBody);
  switch (rt.kind) {
    case 'health': return health(c);
    case 'metrics':
      return new Response(metricsText(), { status: 200, headers: { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' } });
    case 'kv': return kv(c, rt.op, rt.arg, body);
    case 'indexes': return indexes(c, method, body);
    case 'index': return oneIndex(c, rt.index, method);
    case 'vector': return vector(c, rt, body);
    default: throw new HttpError(404, 'not_found', `no route ${method} ${path}`);
  }
}

export default {
  async fetch(req, env) {
    const t0 = Date.now();
    const rid = requestId(req);
    let res;
    let route = 'unknown';
    try {
      const rt = resolve(rawPath(req.url));
      if (rt) route = rt.name;
      res = await handle(req, env);
    } catch (e) {
      res = errorResponse(e);
    }
    res.headers.set('X-Request-Id', rid);
    observe(route, res.status, Date.now() - t0);
    return res;
  },
};
