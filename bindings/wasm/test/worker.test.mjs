// node --test: the Worker on the real workerd (scripts/worker-dev.sh), for
// what the REST suite does not reach: a shard object evicted while idle and
// re-created in the same isolate (its predecessor's index is closed first),
// the flush alarm (the next cold start loads the graph: open_reinserted 0),
// and a value split over several SQLite rows (> 1 MiB) surviving SIGKILL.
// Needs QZ_WASM_BUILD assembled (run-tests.sh does it); skips without workerd.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../../..');
const workerd = join(root, 'examples/worker/node_modules/@cloudflare/workerd-linux-64/bin/workerd');
const built = process.env.QZ_WASM_BUILD && existsSync(join(process.env.QZ_WASM_BUILD, 'worker/worker.js'));
const skip = !existsSync(workerd) || !built ? 'workerd or the assembled Worker (QZ_WASM_BUILD) missing' : false;
const key = 'node-test-key';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((res) => {
    const s = createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

class Workerd {
  constructor(port, data) { this.port = port; this.data = data; this.url = `http://127.0.0.1:${port}`; }
  async start() {
    this.proc = spawn('bash', [join(root, 'scripts/worker-dev.sh'), String(this.port), this.data], {
      env: { ...process.env, QUARTZ_API_KEY: key, QUARTZ_SHARDS: '1' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.log = '';
    this.proc.stderr.on('data', (d) => { this.log += d; });
    for (let i = 0; i < 600; i++) {
      if (this.proc.exitCode !== null) throw new Error('workerd exited: ' + this.log);
      try { if ((await fetch(this.url + '/health')).ok) return; } catch { /* not up yet */ }
      await sleep(100);
    }
    throw new Error('workerd did not answer /health: ' + this.log);
  }
  kill() {
    return new Promise((res) => {
      if (!this.proc || this.proc.exitCode !== null) return res();
      this.proc.once('exit', () => res());
      this.proc.kill('SIGKILL');
    });
  }
  async req(method, path, body) {
    const r = await fetch(this.url + path, {
      method, headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: r.status, body: await r.json() };
  }
}

const vec = (i) => Array.from({ length: 16 }, (_, j) => Math.sin(i * 7.1 + j * 1.3));

test('worker: eviction, flush alarm, multi-row values, SIGKILL', { skip, timeout: 180000 }, async () => {
  const data = mkdtempSync(join(tmpdir(), 'qz-wt-'));
  const w = new Workerd(await freePort(), data);
  try {
    await w.start();
    assert.equal((await w.req('POST', '/api/indexes', { name: 'ev', dimension: 16, metric: 'l2' })).status, 201);
    const rows = (a, b) => Array.from({ length: b - a }, (_, k) => ({ id: a + k, vector: vec(a + k), metadata: { i: a + k } }));
    assert.equal((await w.req('POST', '/api/indexes/ev/vector/batch-insert', { vectors: rows(0, 100) })).status, 201);
    const big = 'x'.repeat(2_500_000); // 3 SQLite rows of at most 1 MiB
    assert.equal((await w.req('POST', '/api/indexes/ev/vector/insert', { id: 'big', vector: vec(999), metadata: big })).status, 201);
    const first = (await w.req('GET', '/api/indexes/ev/vector/stats')).body.shards[0].instance;
    // idle: workerd evicts the object after 10 s without requests
    let second = first;
    for (let waited = 0; waited < 40000 && second === first; waited += 11000) {
      await sleep(11000);
      second = (await w.req('GET', '/api/indexes/ev/vector/stats')).body.shards[0].instance;
    }
    assert.notEqual(second, first, 'the shard object was never evicted');
    // the new instance serves everything and takes writes
    assert.equal((await w.req('POST', '/api/indexes/ev/vector/batch-insert', { vectors: rows(100, 200) })).status, 201);
    for (const i of [0, 57, 99, 150, 199]) {
      const s = await w.req('POST', '/api/indexes/ev/vector/search', { query: vec(i), k: 1 });
      assert.equal(s.body.results[0].id, i);
    }
    await sleep(7000); // the flush alarm (5 s after the last write)
    await w.kill();
    await w.start();
    const st = (await w.req('GET', '/api/indexes/ev/vector/stats')).body;
    assert.equal(st.count, 201);
    assert.equal(st.shards[0].open_reinserted, 0, 'the cold start re-inserted vectors: no flush reached storage');
    const g = await w.req('GET', '/api/indexes/ev/vector/get/big');
    assert.equal(g.status, 200);
    assert.equal(g.body.metadata.length, big.length);
    for (const i of [0, 99, 100, 199]) {
      const s = await w.req('POST', '/api/indexes/ev/vector/search', { query: vec(i), k: 1 });
      assert.equal(s.body.results[0].id, i);
      assert.deepEqual((await w.req('GET', `/api/indexes/ev/vector/get/${i}`)).body.metadata, { i });
    }
  } finally {
    await w.kill();
    rmSync(data, { recursive: true, force: true });
  }
});

test('worker: running out of wasm memory is a 503 with a message, and the isolate lives on', { skip, timeout: 240000 }, async (t) => {
  const data = mkdtempSync(join(tmpdir(), 'qz-wt-'));
  const w = new Workerd(await freePort(), data);
  try {
    await w.start();
    assert.equal((await w.req('POST', '/api/indexes', { name: 'fat', dimension: 4, metric: 'l2' })).status, 201);
    assert.equal((await w.req('POST', '/api/indexes', { name: 'thin', dimension: 4, metric: 'l2' })).status, 201);
    assert.equal((await w.req('POST', '/api/indexes/thin/vector/insert', { id: 1, vector: [1, 2, 3, 4] })).status, 201);
    // metadata lives in the engine's memory: 3.5 MB per vector fills 96 MB
    const meta = 'm'.repeat(3_500_000);
    let r, n = 0;
    for (; n < 60; n++) {
      r = await w.req('POST', '/api/indexes/fat/vector/insert', { id: n, vector: [n, 1, 1, 1], metadata: meta });
      if (r.status !== 201) break;
    }
    assert.ok(n > 5 && n < 60, `stopped after ${n} inserts`);
    assert.equal(r.status, 503, JSON.stringify(r.body).slice(0, 300));
    assert.equal(r.body.error.code, 'unavailable');
    assert.match(r.body.error.message, /memory/);
    t.diagnostic(`503 after ${n} inserts of ${meta.length} bytes: ${r.body.error.message}`);
    // the failed insert stored nothing; everything acknowledged is there
    assert.equal((await w.req('GET', `/api/indexes/fat/vector/get/${n}`)).status, 404);
    assert.equal((await w.req('GET', '/api/indexes/fat/vector/get/0')).body.metadata.length, meta.length);
    // the isolate still serves: health, the other index, searches
    assert.equal((await fetch(w.url + '/health')).status, 200);
    assert.equal((await w.req('POST', '/api/indexes/thin/vector/search', { query: [1, 2, 3, 4], k: 1 })).body.results[0].id, 1);
    const s = await w.req('POST', '/api/indexes/fat/vector/search', { query: [0, 1, 1, 1], k: 1, include_metadata: false });
    assert.equal(s.status, 200);
    assert.equal(s.body.results[0].id, 0);
  } finally {
    await w.kill();
    rmSync(data, { recursive: true, force: true });
  }
});
