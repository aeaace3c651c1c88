'use strict';
// The smoke test every binding repeats (tests/api/test_smoke_sapdocs.c,
// bindings/python/tests/test_smoke.py), on the real 384-d sentence
// embeddings of sapdocs-minilm384-angular, through the Node binding:
//   1. open a new directory (384 dimensions, cosine);
//   2. batch insert the 678 base rows under ids 1000 + row, each with its
//      chunk id (base_ids.txt line) as metadata; count is 678;
//   3. batch search the 100 queries, k = 10, ef = 100: recall@10 against
//      gt.ivecs >= 0.95;
//   4. get id 1005: the base row (unit length already, so equal within
//      1e-5) and its chunk id;
//   5. delete ids 1000..1009: gone from has, get (QZ_ENOTFOUND) and every
//      search result;
//   6. close, reopen the directory without options: count 668, the deleted
//      ids still gone, get id 1100 as in 4, recall@10 against the ground
//      truth without the deleted rows >= 0.95.
// Skipped with a message when the dataset is absent.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { quartz, loadDataset, tmpdir, isQuartz } = require('./helpers');

const NAME = 'sapdocs-minilm384-angular';
const K = 10;
const BASE_ID = 1000;
const NDEL = 10;

const d = loadDataset(NAME);

/** recall@10 of batch results against the ground truth, skipping ground-truth rows below firstLive. */
function recall(res, firstLive) {
  let good = 0;
  const nq = d.query.n;
  for (let q = 0; q < nq; q++) {
    const found = new Set();
    for (let j = 0; j < res.counts[q]; j++) found.add(res.ids[q * K + j]);
    let want = 0;
    for (let g = 0; g < d.gt.dim && want < K; g++) {
      const r = d.gt.data[q * d.gt.dim + g];
      if (r < firstLive) continue;
      want++;
      if (found.has(BigInt(BASE_ID + r))) good++;
    }
  }
  return good / (nq * K);
}

function expectGet(db, chunk, r) {
  const got = db.get(BASE_ID + r, { metadata: 'string' });
  assert.equal(got.metadata, chunk[r]);
  assert.ok(got.vector instanceof Float32Array);
  assert.equal(got.vector.length, d.base.dim);
  for (let i = 0; i < d.base.dim; i++) assert.ok(Math.abs(got.vector[i] - d.base.data[r * d.base.dim + i]) < 1e-5);
}

test('smoke: open, batch insert, search, recall, get, delete, reopen (sapdocs)', { skip: d.skip || false }, async (t) => {
  const chunk = fs.readFileSync(path.join(d.dir, 'base_ids.txt'), 'utf8').split('\n').slice(0, d.base.n);
  assert.equal(chunk.length, d.base.n);
  const dir = tmpdir(t);
  const n = d.base.n;

  // 1. open a new directory
  let db = new quartz.Database(dir, { dim: d.base.dim, metric: 'cosine' });
  assert.equal(db.dim, 384);
  assert.equal(db.metric, 'cosine');

  // 2. batch insert with metadata
  const ids = new BigUint64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(BASE_ID + i);
  await db.insertBatchAsync(ids, d.base.data, { metadata: chunk });
  assert.equal(db.stats().count, n);
  assert.equal(db.size, n);

  // 3. batch search, recall@10
  let res = db.search(d.query.data, K, { ef: 100 });
  assert.equal(res.ids.length, d.query.n * K);
  assert.equal(res.counts.length, d.query.n);
  let r = recall(res, 0);
  t.diagnostic(`recall@10 = ${r.toFixed(4)}`);
  assert.ok(r >= 0.95, `recall@10 ${r}`);
  // the Promise form answers the same
  const resAsync = await db.searchAsync(d.query.data, K, { ef: 100 });
  assert.deepEqual(resAsync.ids, res.ids);
  assert.deepEqual(resAsync.counts, res.counts);
  // and row 0 is what a single search gives
  const one = db.search(d.query.data.subarray(0, d.base.dim), K, { ef: 100 });
  assert.deepEqual(one.ids, res.ids.subarray(0, K));
  assert.deepEqual(one.distances, res.distances.subarray(0, K));

  // 4. get
  expectGet(db, chunk, 5);

  // 5. delete
  for (let i = 0; i < NDEL; i++) db.delete(BASE_ID + i);
  for (let i = 0; i < NDEL; i++) {
    assert.equal(db.has(BASE_ID + i), false);
    assert.throws(() => db.get(BASE_ID + i), isQuartz('QZ_ENOTFOUND'));
  }
  res = db.search(d.query.data, K, { ef: 100 });
  for (let i = 0; i < res.ids.length; i++) assert.ok(res.ids[i] >= BigInt(BASE_ID + NDEL));
  await db.closeAsync();
  assert.equal(db.closed, true);

  // 6. reopen without options
  db = await quartz.Database.open(dir);
  t.after(() => db.close());
  const st = db.stats();
  assert.equal(st.count, n - NDEL);
  assert.equal(st.dim, d.base.dim);
  for (let i = 0; i < NDEL; i++) assert.equal(db.has(BASE_ID + i), false);
  expectGet(db, chunk, 100);
  res = db.search(d.query.data, K, { ef: 100 });
  for (let i = 0; i < res.ids.length; i++) assert.ok(res.ids[i] >= BigInt(BASE_ID + NDEL));
  r = recall(res, NDEL);
  t.diagnostic(`after reopen: recall@10 = ${r.toFixed(4)}`);
  assert.ok(r >= 0.95, `recall@10 after reopen ${r}`);
  db.close();
});
