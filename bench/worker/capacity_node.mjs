// capacity_node.mjs DIM [DTYPE] [ORIGINALS] [CAPACITY] - how many vectors one
// wasm instance (one isolate's linear memory, capped at the build's
// MAXIMUM_MEMORY) holds over the JS map backend before an insert fails with
// QZ_ENOMEM: random DIM-d vectors (cosine, M 16, ef_construction 100) go in
// by batches of 1,000 with initialCapacity CAPACITY (default 200,000) until
// the first failure, which must be QZ_ENOMEM. Prints the count reached and
// the linear memory in use. DTYPE f32 (default), f16 or int8; ORIGINALS
// memory (default) or storage (QZ_OPEN_ORIGINALS_IN_STORAGE).
//   QZ_WASM_DIR=build-wasm/bindings/wasm node bench/worker/capacity_node.mjs 384 int8 storage
import { loadQuartzNode, MapStore, Status } from '../../bindings/wasm/quartz-node.mjs';

const d = Number(process.argv[2] || 384), dtype = process.argv[3] || 'f32';
const originals = process.argv[4] || 'memory', cap = Number(process.argv[5] || 200000);
const dir = process.env.QZ_WASM_DIR || 'build-wasm/bindings/wasm';
let s = 12345;
const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296) - 0.5;

const qz = await loadQuartzNode(dir);
let ix;
try {
  ix = qz.open(new MapStore(), { dimensions: d, metric: 'cosine', M: 16, efConstruction: 100, initialCapacity: cap,
    dtype, originals });
} catch (e) {
  console.log(`open failed: ${e.message}`);
  process.exit(1);
}
const B = 1000;
let n = 0, why = 'reached the capacity';
const t0 = performance.now();
for (; n < cap; n += B) {
  const v = new Float32Array(B * d);
  for (let i = 0; i < v.length; i++) v[i] = rnd();
  try {
    ix.insertBatch(BigUint64Array.from({ length: B }, (_, i) => BigInt(n + i)), v);
  } catch (e) {
    if (e.code !== Status.ENOMEM) throw e;
    why = `QZ_ENOMEM: ${e.message}`;
    break;
  }
}
const st = ix.stats();
console.log(`dim=${d} dtype=${dtype} originals=${originals} capacity=${cap}: ${st.count} vectors ` +
  `(${why}); index memory_bytes ${(st.memoryBytes / 2 ** 20).toFixed(1)} MiB, linear memory ` +
  `${(qz.memoryBytes() / 2 ** 20).toFixed(1)} MiB, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
ix.close();
