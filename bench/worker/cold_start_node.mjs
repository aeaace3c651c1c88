// cold_start_node.mjs N DIM [CAPACITY] [M] - wasm cold start in Node over the JS
// map backend: one wasm instance builds an index of N random DIM-d vectors
// (cosine, M (default 16), ef_construction 100) in a MapStore and flushes it (graph
// checkpoint); a second, fresh wasm instance (a new isolate's view) opens
// the same store. Prints build time, store size, open time, open_reinserted
// (0 = loaded without a rebuild) and a self-search check.
//   QZ_WASM_DIR=build-wasm/bindings/wasm node bench/worker/cold_start_node.mjs 50000 384 50000
import { loadQuartzNode, MapStore } from '../../bindings/wasm/quartz-node.mjs';

const n = Number(process.argv[2] || 50000), d = Number(process.argv[3] || 384);
const cap = Number(process.argv[4] || n), M = Number(process.argv[5] || 16);
const dir = process.env.QZ_WASM_DIR || 'build-wasm/bindings/wasm';
let s = 12345;
const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 4294967296) - 0.5;

const st = new MapStore();
const qz1 = await loadQuartzNode(dir);
const ix = qz1.open(st, { dimensions: d, metric: 'cosine', M, efConstruction: 100, initialCapacity: cap });
const B = 1000, probe = new Float32Array(d);
let t0 = performance.now();
for (let at = 0; at < n; at += B) {
  const m = Math.min(B, n - at), v = new Float32Array(m * d);
  for (let i = 0; i < v.length; i++) v[i] = rnd();
  if (at === 0) probe.set(v.subarray(0, d));
  ix.insertBatch(BigUint64Array.from({ length: m }, (_, i) => BigInt(at + i)), v);
}
const buildS = (performance.now() - t0) / 1000;
t0 = performance.now();
ix.flush();
const flushS = (performance.now() - t0) / 1000;
const size = st.size();
console.log(`build ${n} x ${d} (M ${M}): ${buildS.toFixed(1)} s (${(n / buildS).toFixed(0)}/s), flush ${flushS.toFixed(2)} s, ` +
  `store ${size.rows} rows ${(size.bytes / 1048576).toFixed(1)} MiB, wasm memory ${(qz1.memoryBytes() / 1048576).toFixed(0)} MiB`);
// the first instance is abandoned without close (as a killed isolate)
const qz2 = await loadQuartzNode(dir);
t0 = performance.now();
const re = qz2.open(st, { initialCapacity: cap });
const openMs = performance.now() - t0;
const stt = re.stats();
const r = re.search(probe, 1);
console.log(`cold open: ${openMs.toFixed(0)} ms, count ${stt.count}, open_reinserted ${stt.openReinserted}, ` +
  `wasm memory ${(qz2.memoryBytes() / 1048576).toFixed(0)} MiB, self-hit ${r.ids[0] === 0n}`);
