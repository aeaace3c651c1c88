// smoke-node.mjs BUILD/bindings/wasm - a manual check of the wasm module in Node
// (not yet a test: the QuartzIndex wrapper and its node --test suite are issue 10 work).
// Opens an in-memory 16-d L2 index, inserts 1,000 random vectors, checks each of the
// first 100 finds itself first, and shows a wrong-dimension error. Emscripten 3.1.6
// ES modules need require/__dirname in Node, and 64-bit ids pass as two 32-bit halves
// (no -sWASM_BIGINT yet).
import { createRequire } from 'node:module'; globalThis.require = createRequire(import.meta.url);
globalThis.__dirname = process.argv[2]; globalThis.__filename = process.argv[2] + '/quartz_wasm.mjs';
const { default: createQuartzModule } = await import(process.argv[2] + '/quartz_wasm.mjs');
const fs = await import('node:fs'); const M = await createQuartzModule({ wasmBinary: fs.readFileSync(process.argv[2] + '/quartz_wasm.wasm') });
const heapU32 = () => new Uint32Array(M.HEAPU8.buffer);
const heapF32 = () => new Float32Array(M.HEAPU8.buffer);
const out = M._malloc(8);
let rc = M._qzw_open(0, 16, 2, 16, 100, 64, 0, 0, out);
if (rc) throw new Error('open ' + rc);
const w = heapU32()[out >> 2];
const db = M._qzw_db(w);
const n = 1000, d = 16, vec = M._malloc(d * 4);
const data = [];
for (let i = 0; i < n; i++) {
  const v = new Float32Array(d).map(() => Math.random());
  data.push(v); heapF32().set(v, vec >> 2);
  rc = M._qz_db_insert(db, i, 0, vec, d, 0, 0);
  if (rc) throw new Error('insert ' + rc + ' ' + M.UTF8ToString(M._qz_errmsg()));
}
const ids = M._malloc(8 * 10), dist = M._malloc(40), found = M._malloc(8);
let hit = 0;
for (let q = 0; q < 100; q++) {
  heapF32().set(data[q], vec >> 2);
  rc = M._qzw_search(w, vec, d, 10, 64, ids, dist, found);
  if (rc) throw new Error('search ' + rc);
  const first = new BigUint64Array(M.HEAPU8.buffer, ids, 10)[0];
  if (first === BigInt(q)) hit++;
}
console.log('simd', M.UTF8ToString(M._qz_simd_backend()), 'self-hits', hit, '/100');
rc = M._qz_db_insert(db, 5, 0, vec, d - 1, 0, 0);
console.log('wrong dim rc', rc, M.UTF8ToString(M._qz_errmsg()));
