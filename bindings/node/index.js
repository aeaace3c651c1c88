'use strict';
// quartzdb - Node binding of libquartz. The native addon (src/, N-API in C)
// does the work; this file loads it, defines QuartzError, makes every
// Promise form reject (never throw), and adds the Map-like db.kv view.
const native = require('./build/Release/quartz.node');

/** Error of a libquartz call: code is the status name ('QZ_EDIM'), errno its fixed number (-10). */
class QuartzError extends Error {
  constructor(message, code, errno) {
    super(message);
    this.name = 'QuartzError';
    this.code = code;
    this.errno = errno;
  }
}
native._setErrorClass(QuartzError);
// The result of one search: views over the buffer the addon filled (k ids, then k distances).
native._setResultMaker((buffer, found, k) => ({
  ids: new BigUint64Array(buffer, 0, found),
  distances: new Float32Array(buffer, k * 8, found),
}));

const { Database } = native;
const proto = Database.prototype;

// A Promise form reports every failure through its Promise, wrong argument
// types included (as fs.promises does), so `await` and .catch() see them all.
function promising(fn) {
  return function (...args) {
    try {
      return fn.apply(this, args);
    } catch (e) {
      return Promise.reject(e);
    }
  };
}
for (const name of ['insertBatchAsync', 'searchAsync', 'flushAsync', 'closeAsync']) {
  Object.defineProperty(proto, name, { value: promising(proto[name]), writable: true, configurable: true });
}
Object.defineProperty(Database, 'open', { value: promising(Database.open), writable: true, configurable: true });

/**
 * db.kv: the key-value store as a Map-like object. Keys are strings (UTF-8)
 * or bytes; values are Buffers by default (or { encoding: 'string' | 'json' }).
 * get() of a missing key is undefined and delete() says whether the key was
 * there, as for a Map; every other failure is a QuartzError.
 */
class KeyValueStore {
  #db;
  constructor(db) {
    this.#db = db;
  }
  get(key, options) {
    try {
      return this.#db.kvGet(key, options);
    } catch (e) {
      if (e instanceof QuartzError && e.code === 'QZ_ENOTFOUND') return undefined;
      throw e;
    }
  }
  set(key, value) {
    this.#db.kvPut(key, value);
    return this;
  }
  has(key) {
    return this.get(key) !== undefined;
  }
  delete(key) {
    try {
      this.#db.kvDelete(key);
      return true;
    } catch (e) {
      if (e instanceof QuartzError && e.code === 'QZ_ENOTFOUND') return false;
      throw e;
    }
  }
  /** [key, value] pairs whose key starts with prefix (all when absent), in ascending byte order. */
  entries(prefix, options) {
    return this.#db.kvScan(prefix, options)[Symbol.iterator]();
  }
  keys(prefix) {
    return this.#db.kvScan(prefix).map((e) => e[0])[Symbol.iterator]();
  }
  values(prefix, options) {
    return this.#db.kvScan(prefix, options).map((e) => e[1])[Symbol.iterator]();
  }
  [Symbol.iterator]() {
    return this.entries();
  }
}

const kvViews = new WeakMap();
Object.defineProperty(proto, 'kv', {
  configurable: true,
  get() {
    let kv = kvViews.get(this);
    if (!kv) {
      this.stats(); // throws as every call does when closed or not a Database
      kv = new KeyValueStore(this);
      kvViews.set(this, kv);
    }
    return kv;
  },
});

/** Live (searchable) vectors, as stats().count. */
Object.defineProperty(proto, 'size', {
  configurable: true,
  get() {
    return this.stats().count;
  },
});

// `using db = new Database(...)` (explicit resource management) closes it.
if (typeof Symbol.dispose === 'symbol') {
  Object.defineProperty(proto, Symbol.dispose, { value: proto.close, writable: true, configurable: true });
}
if (typeof Symbol.asyncDispose === 'symbol') {
  Object.defineProperty(proto, Symbol.asyncDispose, { value: proto.closeAsync, writable: true, configurable: true });
}

module.exports = {
  Database,
  QuartzError,
  KeyValueStore,
  codes: Object.freeze(native.codes),
  version: native.version,
  simd: native.simd,
  MAX_K: native.MAX_K,
  MAX_EF: native.MAX_EF,
  MAX_M: native.MAX_M,
  MAX_DIMENSIONS: native.MAX_DIMENSIONS,
  MAX_METADATA: native.MAX_METADATA,
  MAX_KEY: native.MAX_KEY,
  /** The id of a padded slot in a batch search result (counts[i] tells real results from padding). */
  PAD_ID: 0xffffffffffffffffn,
};
