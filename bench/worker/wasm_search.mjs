// wasm_search.mjs DATASET_DIR [EFS] [M] [EFC] - libquartz in wasm (Node,
// QuartzIndex, in memory) on a texmex dataset: build with one batch insert,
// then for each ef search every query one at a time (fastest of QZ_REPEATS=3 runs) (one thread, as the
// native bench_index's single-thread rows) and print recall@10 and QPS in
// the same CSV columns as bench/bench_index:
//   engine,dataset,ef,recall,qps
//   QZ_WASM_DIR=build-wasm/bindings/wasm node bench/worker/wasm_search.mjs \
//     ../shared/data/sapdocs-minilm384-angular 10,20,40,80,120,200,400
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { loadQuartzNode } from '../../bindings/wasm/quartz-node.mjs';

function vecs(path, Ctor) {
  const b = readFileSync(path);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const d = dv.getInt32(0, true), n = b.byteLength / (4 + 4 * d);
  const out = new Ctor(n * d);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < d; j++)
      out[i * d + j] = Ctor === Float32Array ? dv.getFloat32(i * (4 + 4 * d) + 4 + 4 * j, true)
        : dv.getInt32(i * (4 + 4 * d) + 4 + 4 * j, true);
  return { n, d, v: out };
}

const dir = process.argv[2];
const efs = (process.argv[3] || '10,20,40,80,120,200,400').split(',').map(Number);
const M = Number(process.argv[4] || 16), efc = Number(process.argv[5] || 200);
const repeats = Number(process.env.QZ_REPEATS || 3); // fastest of this many 1-second runs, as bench_index --repeats
const name = basename(dir);
const metric = name.endsWith('-angular') ? 'cosine' : 'l2';
const base = vecs(`${dir}/base.fvecs`, Float32Array), q = vecs(`${dir}/query.fvecs`, Float32Array);
const gt = vecs(`${dir}/gt.ivecs`, Int32Array);
const qz = await loadQuartzNode(process.env.QZ_WASM_DIR || 'build-wasm/bindings/wasm');
const ix = qz.open(null, { dimensions: base.d, metric, M, efConstruction: efc, initialCapacity: base.n });
let t0 = performance.now();
ix.insertBatch(BigUint64Array.from({ length: base.n }, (_, i) => BigInt(i)), base.v);
const buildS = (performance.now() - t0) / 1000;
console.error(`wasm (${qz.simd}): built ${base.n} x ${base.d} ${metric} in ${buildS.toFixed(2)} s, M ${M}, efc ${efc}`);
console.log('engine,dataset,ef,recall,qps');
const k = 10;
for (const ef of efs) {
  let hit = 0, best = 0;
  for (let rep = 0; rep < repeats; rep++) {
    let runs = 0, secs = 0;
    while (secs < 1.0) { // repeat the query set until a run lasts 1 s
      t0 = performance.now();
      for (let i = 0; i < q.n; i++) {
        const r = ix.search(q.v.subarray(i * q.d, (i + 1) * q.d), k, { ef });
        if (rep === 0 && runs === 0) {
          const want = new Set(Array.from(gt.v.subarray(i * gt.d, i * gt.d + k)));
          for (const id of r.ids) if (want.has(Number(id))) hit++;
        }
      }
      secs += (performance.now() - t0) / 1000;
      runs++;
    }
    best = Math.max(best, (q.n * runs) / secs);
  }
  console.log(`quartz-wasm,${name},${ef},${(hit / (q.n * k)).toFixed(4)},${best.toFixed(0)}`);
}
