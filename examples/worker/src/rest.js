// rest.js - the parts of the REST contract (docs/rest-api.md) that do not
// touch storage: errors, ids and the metadata envelope, field checks. The
// rules and messages follow quartzd (tools/quartzd/ids.c, http.c,
// routes_vector.c) so that one conformance suite passes against both.

export const MAX_SAFE = 9007199254740991; // 2^53 - 1
export const MAX_ID_BYTES = 256;
export const MAX_K = 10000, MAX_EF = 100000, MAX_M = 256, MAX_DIM = 65536;
export const MAX_METADATA = 16 * 1024 * 1024;
export const METRICS = ['cosine', 'l2', 'ip', 'hamming'];

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/** An error that becomes {"error": {code, message}} with an HTTP status. */
export class HttpError extends Error {
  constructor(status, code, message, headers) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** qz_status -> [HTTP status, code], as quartzd's qd_error_qz. */
export function qzHttp(code) {
  switch (code) {
    case -1: return [400, 'invalid_argument'];
    case -3: return [404, 'not_found'];
    case -4: return [409, 'already_exists'];
    case -10: return [422, 'dimension_mismatch'];
    case -12: return [422, 'non_finite'];
    case -13: return [422, 'zero_vector'];
    case -14: return [422, 'out_of_range'];
    case -2: case -5: case -6: case -7: case -8: case -16: return [503, 'unavailable'];
    default: return [500, 'internal'];
  }
}

/** A plain {error: {status, code, message}} for returning over RPC. */
export function errorOf(e, prefix = '') {
  if (e instanceof HttpError) return { status: e.status, code: e.code, message: prefix + e.message };
  if (e && e.name === 'QuartzError') {
    const [status, code] = qzHttp(e.code);
    return { status, code, message: prefix + e.message };
  }
  return { status: 500, code: 'internal', message: prefix + String(e && e.stack ? e.stack : e) };
}

// ---- ids ----

const FNV_OFFSET = 0xcbf29ce484222325n, FNV_PRIME = 0x100000001b3n, MASK = 0xffffffffffffffffn;

export function fnv1a64(bytes, seed = 0n) {
  let h = FNV_OFFSET ^ seed;
  for (let i = 0; i < bytes.length; i++) {
    h ^= BigInt(bytes[i]);
    h = (h * FNV_PRIME) & MASK;
  }
  return h;
}

function canonicalDecimal(s) {
  if (s.length === 0 || s.length > 16 || !/^(0|[1-9][0-9]*)$/.test(s)) return null;
  const v = Number(s);
  return v <= MAX_SAFE ? v : null;
}

/** A REST id: {eid: BigInt, sid: string|null}; sid is set for hashed string ids. */
export function idFromText(s) {
  const b = enc.encode(s);
  if (b.length === 0 || b.length > MAX_ID_BYTES)
    throw new HttpError(400, 'invalid_argument', `id must be 1 to ${MAX_ID_BYTES} bytes, got ${b.length}`);
  if (s.includes('\0')) throw new HttpError(400, 'invalid_argument', 'id must not contain a NUL character');
  const v = canonicalDecimal(s);
  if (v !== null) return { eid: BigInt(v), sid: null };
  return { eid: fnv1a64(b) | 0x8000000000000000n, sid: s };
}

export function idFromJson(v, pre = '') {
  if (v === undefined) throw new HttpError(400, 'invalid_argument', `${pre}missing field "id"`);
  if (typeof v === 'number') {
    if (!(v >= 0) || v > MAX_SAFE || !Number.isInteger(v))
      throw new HttpError(400, 'invalid_argument', `${pre}id must be an integer from 0 to 2^53-1 or a string, got ${v}`);
    return { eid: BigInt(v), sid: null };
  }
  if (typeof v === 'string') {
    try {
      return idFromText(v);
    } catch (e) {
      if (e instanceof HttpError) e.message = pre + e.message;
      throw e;
    }
  }
  throw new HttpError(400, 'invalid_argument', `${pre}id must be an integer or a string`);
}

/** The id as the response gives it back: a number or the string. */
export function idJson(id) {
  return id.sid !== null ? id.sid : Number(id.eid);
}

/** The id as messages name it. */
export function idText(id) {
  return id.sid !== null ? `"${id.sid.length > 80 ? id.sid.slice(0, 80) : id.sid}"` : String(id.eid);
}

/** Percent-decode a path segment into a string; HttpError on a bad escape. */
export function pathText(seg, what) {
  try {
    return decodeURIComponent(seg);
  } catch {
    throw new HttpError(400, 'invalid_argument', `the ${what} in the path has a bad percent escape`);
  }
}

// ---- metadata envelope ----
// integer id: the metadata's JSON text (or nothing); string id: 0x02, the
// id's UTF-8 length as u16 LE, its bytes, then the JSON text (or nothing).
// JSON text never starts with 0x02, and the length lets an id hold any
// character, NUL included. (quartzd's 0x01 ... 0x00 form is still read.)

export function envelope(id, metaText) {
  const m = metaText === null ? new Uint8Array(0) : enc.encode(metaText);
  if (id.sid === null) return m;
  const s = enc.encode(id.sid);
  const out = new Uint8Array(s.length + 3 + m.length);
  out[0] = 2;
  out[1] = s.length & 255;
  out[2] = s.length >> 8;
  out.set(s, 3);
  out.set(m, s.length + 3);
  return out;
}

/** {sid: string|null, meta: string|null} of a stored blob. */
export function splitEnvelope(blob) {
  if (!blob || blob.length === 0) return { sid: null, meta: null };
  let sid = null, off = 0;
  if (blob[0] === 2 && blob.length >= 3) {
    const n = blob[1] | (blob[2] << 8);
    sid = dec.decode(blob.subarray(3, 3 + n));
    off = 3 + n;
  } else if (blob[0] === 1) {
    const z = blob.indexOf(0, 1);
    if (z > 0) {
      sid = dec.decode(blob.subarray(1, z));
      off = z + 1;
    }
  }
  return { sid, meta: off < blob.length ? dec.decode(blob.subarray(off)) : null };
}

// ---- field checks (as quartzd's http.c / routes) ----

export function parseObject(text) {
  if (text.length === 0)
    throw new HttpError(400, 'invalid_json', 'the request body is empty; a JSON object is expected');
  let j;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, 'invalid_json', `the body is not valid JSON (${e.message})`);
  }
  if (j === null || typeof j !== 'object' || Array.isArray(j))
    throw new HttpError(400, 'invalid_json', 'the body must be a JSON object');
  if (text.includes('\\u0000') && holdsNul(j))
    throw new HttpError(400, 'invalid_argument', 'the body holds a NUL character (\\u0000) in a string; it is not allowed');
  return j;
}

function holdsNul(v) {
  if (typeof v === 'string') return v.includes('\0');
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.some(holdsNul);
  for (const k of Object.keys(v)) if (k.includes('\0') || holdsNul(v[k])) return true;
  return false;
}

/** A vector field as a Float32Array of dim, with quartzd's messages. */
export function readVector(arr, dim, what, row = -1, metric = null) {
  const pre = row >= 0 ? `row ${row}: ` : '';
  if (arr === undefined) throw new HttpError(400, 'invalid_argument', `${pre}missing field "${what}"`);
  if (!Array.isArray(arr)) throw new HttpError(400, 'invalid_argument', `${pre}${what} must be an array of numbers`);
  const n = Math.min(arr.length, dim);
  for (let i = 0; i < n; i++)
    if (typeof arr[i] !== 'number')
      throw new HttpError(400, 'invalid_argument', `${pre}${what} component ${i} is not a number`);
  if (arr.length !== dim)
    throw new HttpError(422, 'dimension_mismatch', `${pre}${what} has ${arr.length} dimensions, index expects ${dim}`);
  const v = Float32Array.from(arr);
  for (let i = 0; i < dim; i++)
    if (!Number.isFinite(v[i])) throw new HttpError(422, 'non_finite', `${pre}${what} component ${i} is not finite`);
  if (metric === 'cosine' && v.every((x) => x === 0))
    throw new HttpError(422, 'zero_vector', `${pre}${what} is all zeros; the cosine metric needs a norm`);
  return v;
}

/** An optional (or required) integer field in lo..hi; undefined when absent. */
export function fieldUint(j, name, required, lo, hi) {
  const v = j[name];
  if (v === undefined || v === null) {
    if (required) throw new HttpError(400, 'invalid_argument', `missing field "${name}"`);
    return undefined;
  }
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new HttpError(400, 'invalid_argument', `"${name}" must be an integer`);
  if (v < lo || v > hi) throw new HttpError(422, 'out_of_range', `${name} must be from ${lo} to ${hi}, got ${v}`);
  return v;
}

export function fieldBool(j, name, dflt) {
  const v = j[name];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new HttpError(400, 'invalid_argument', `"${name}" must be true or false`);
  return v;
}

export function metaText(m, pre = '') {
  if (m === undefined || m === null) return null;
  return JSON.stringify(m);
}

export function validIndexName(s) {
  return typeof s === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(s);
}

export function scoreOf(metric, d, dim) {
  switch (metric) {
    case 'l2': return 1 / (1 + Math.sqrt(d > 0 ? d : 0));
    case 'hamming': return 1 - d / dim;
    default: return 1 - d;
  }
}

/** The shard of an engine id among n: a 64-bit mix, so hashed and
 *  sequential integer ids both spread evenly. */
export function shardOf(eid, n) {
  if (n <= 1) return 0;
  let x = eid & MASK;
  x ^= x >> 33n;
  x = (x * 0xff51afd7ed558ccdn) & MASK;
  x ^= x >> 33n;
  x = (x * 0xc4ceb9fe1a85ec53n) & MASK;
  x ^= x >> 33n;
  return Number(x % BigInt(n));
}
