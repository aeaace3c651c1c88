// Type declarations of quartzdb, the Node binding of libquartz (index.js + the
// N-API addon in src/). Every declaration here is what the code does; see
// README.md for the behaviour behind it.
/// <reference types="node" />

/** An id: a bigint in 0n..2n**64n-1n, or a Number that is a safe integer >= 0. Results always give bigints. */
export type Id = bigint | number;

/** Distance metrics; smaller distances are closer (cosine: 1 - cos, l2: squared Euclidean, ip: 1 - dot, hamming: differing bits). */
export type Metric = 'cosine' | 'l2' | 'ip' | 'hamming';

/** Durability of a database directory (in-memory databases ignore it). */
export type Durability = 'sync' | 'batched' | 'none';

/**
 * Metadata or a key-value value as given: bytes as they are (Buffer,
 * Uint8Array, ArrayBuffer), a string as UTF-8, any other object as its
 * JSON.stringify() text; null or undefined is none.
 */
export type Bytes = Buffer | Uint8Array | ArrayBuffer;
export type Metadata = Bytes | string | object | null | undefined;

/** A key of the key-value store: a string (UTF-8) or bytes, 1..511 bytes. */
export type Key = string | Bytes;

/** How stored bytes come back: a Buffer (default), a UTF-8 string, or JSON.parse() of it. */
export type Encoding = 'buffer' | 'string' | 'utf8' | 'json';

/** The name of a libquartz status code, as QuartzError#code. */
export type QuartzErrorCode =
  | 'QZ_EINVAL'
  | 'QZ_ENOMEM'
  | 'QZ_ENOTFOUND'
  | 'QZ_EEXISTS'
  | 'QZ_EIO'
  | 'QZ_ECORRUPT'
  | 'QZ_EFULL'
  | 'QZ_EBUSY'
  | 'QZ_EVERSION'
  | 'QZ_EDIM'
  | 'QZ_EUSER'
  | 'QZ_ENONFINITE'
  | 'QZ_EZEROVEC'
  | 'QZ_ERANGE'
  | 'QZ_ETOOSMALL'
  | 'QZ_EREADONLY'
  | 'QZ_EUNSUPPORTED'
  | 'QZ_EUNKNOWN';

/**
 * A failed libquartz call. A wrong JS type is a TypeError instead (code
 * 'ERR_INVALID_ARG_TYPE'), a number an argument cannot hold a RangeError
 * ('ERR_OUT_OF_RANGE').
 */
export class QuartzError extends Error {
  constructor(message: string, code: QuartzErrorCode, errno: number);
  readonly name: 'QuartzError';
  /** The status name, 'QZ_EDIM'. */
  readonly code: QuartzErrorCode;
  /** The status number of quartz.h, fixed forever (QZ_EDIM is -10). */
  readonly errno: number;
  /** libquartz's message for this failure (qz_errmsg()), e.g. "vector has 3 dimensions, database expects 4". */
  readonly message: string;
}

/** Options of new Database() and Database.open(). Unknown keys are refused (QZ_EINVAL). */
export interface OpenOptions {
  /** Vector dimension, 1..65536; required for a new database, else 0/absent or the stored one. */
  dim?: number;
  /** Same as dim. */
  dimensions?: number;
  /** Default 'cosine'. An existing database keeps its own. */
  metric?: Metric;
  /** Links per node on upper layers, 2..256 (layer 0 has 2*M); default 16. */
  M?: number;
  /** Candidate list size while inserting, 1..100000; default 200. */
  efConstruction?: number;
  /** Default search ef, 1..100000; default 64. */
  efSearch?: number;
  /** Vectors to reserve room for (the index grows past it); default 1024. */
  capacity?: number;
  /** Directories only; default 'batched'. */
  durability?: Durability;
  /** The 'batched' window in ms; default 100. */
  batchWindowMs?: number;
  /** Threads of insertBatch and batch searches (the calling thread included); default all cores. */
  threads?: number;
  /** Seed of the level generator; default a fixed one. */
  seed?: bigint | number;
  /** Open an existing directory read-only: writes fail with QZ_EREADONLY. */
  readonly?: boolean;
  /** Open an existing database only: QZ_ENOTFOUND, and nothing created, when there is none. */
  existing?: boolean;
  /** Element type of the codes the graph is searched on (qz_open_options.dtype); default 'f32'.
   *  An existing database keeps its own; another one is refused (QZ_EINVAL). */
  dtype?: 'f32' | 'f16' | 'int8' | 'binary';
  /** Where an f16 or int8 directory keeps its f32 originals: 'memory' (default) or 'storage'
   *  (QZ_OPEN_ORIGINALS_IN_STORAGE: only the codes stay in memory; re-ranking and get read LMDB). */
  originals?: 'memory' | 'storage';
}

/** Options of a search. Unknown keys are refused (QZ_EINVAL). */
export interface SearchOptions {
  /** Candidate list size, 1..100000 (raised to k when smaller); default the database's efSearch. */
  ef?: number;
  /** Return only these ids (evaluated in C; the ids need not be sorted). */
  filter?: BigUint64Array | ReadonlyArray<Id>;
  /** With filter: return every id but these. */
  exclude?: boolean;
}

/** Options of insertBatch / insertBatchAsync. */
export interface BatchOptions {
  /** Replace existing ids instead of failing with QZ_EEXISTS. */
  upsert?: boolean;
  /** One metadata entry per row (null/undefined for none). */
  metadata?: ReadonlyArray<Metadata>;
}

/** Results of one query, nearest first: as many as were found (<= k). */
export interface SearchResult {
  ids: BigUint64Array;
  distances: Float32Array;
}

/**
 * Results of nq queries: ids and distances hold nq * k slots, row i at
 * i * k; counts[i] results are real, the slots after them are padding
 * (PAD_ID, Infinity). The counts are authoritative: PAD_ID is a valid id.
 */
export interface BatchSearchResult extends SearchResult {
  counts: Uint32Array;
}

/** What get() returns. */
export interface Entry<M = Buffer> {
  /** The stored vector (cosine: normalised to unit length; hamming: 0/1 components). */
  vector: Float32Array;
  /** The metadata, or null when none was stored. */
  metadata: M | null;
}

export interface GetOptions {
  /** How the metadata comes back; default 'buffer'. */
  metadata?: Encoding;
}

export interface EncodingOptions {
  /** How values come back; default 'buffer'. */
  encoding?: Encoding;
}

/** Statistics of a database (stats()). */
export interface Stats {
  dim: number;
  metric: Metric;
  M: number;
  efConstruction: number;
  efSearch: number;
  /** Highest graph layer in use. */
  maxLevel: number;
  /** Live (searchable) vectors. */
  count: number;
  /** Deleted vectors not yet unlinked from the graph. */
  deleted: number;
  /** Vector slots allocated. */
  capacity: number;
  /** Heap memory of the index, metadata and id map. */
  memoryBytes: number;
  /** Vectors the open re-inserted because the graph snapshot did not cover them (0 after a clean close). */
  openReinserted: number;
  /** Active distance kernels ('avx2', 'neon', ...). */
  simd: string;
  /** Element type of the codes ('f32', 'f16', 'int8', 'binary'). */
  dtype: string;
}

/** Run-time tunables of setParam(). */
export type Param = 'efSearch' | 'checkpointWrites' | 'checkpointMs';

type Decoded<E> = E extends { encoding: 'string' | 'utf8' } ? string : E extends { encoding: 'json' } ? unknown : Buffer;

/**
 * db.kv: the key-value store beside the vectors as a Map-like object.
 * get() of a missing key is undefined and delete() tells whether the key
 * was there; every other failure is a QuartzError.
 */
export class KeyValueStore {
  private constructor();
  get(key: Key): Buffer | undefined;
  get(key: Key, options: { encoding: 'string' | 'utf8' }): string | undefined;
  get(key: Key, options: { encoding: 'json' }): unknown;
  get(key: Key, options?: EncodingOptions): Buffer | string | unknown;
  set(key: Key, value: Exclude<Metadata, null | undefined>): this;
  has(key: Key): boolean;
  delete(key: Key): boolean;
  /** [key, value] pairs whose key starts with prefix (all when absent), in ascending byte order of the keys; keys are strings unless prefix is bytes. */
  entries(prefix?: string | null): IterableIterator<[string, Buffer]>;
  entries<E extends EncodingOptions>(prefix: string | null | undefined, options: E): IterableIterator<[string, Decoded<E>]>;
  entries(prefix: Bytes): IterableIterator<[Buffer, Buffer]>;
  entries<E extends EncodingOptions>(prefix: Bytes, options: E): IterableIterator<[Buffer, Decoded<E>]>;
  keys(prefix?: string | null): IterableIterator<string>;
  keys(prefix: Bytes): IterableIterator<Buffer>;
  values(prefix?: Key | null): IterableIterator<Buffer>;
  values<E extends EncodingOptions>(prefix: Key | null | undefined, options: E): IterableIterator<Decoded<E>>;
  [Symbol.iterator](): IterableIterator<[string, Buffer]>;
}

/**
 * A database, in memory (no path) or in a directory. Calls on a closed
 * database fail with QuartzError QZ_EINVAL "database is closed".
 */
export class Database {
  /** Open or create synchronously. A first argument that is an object is the options of an in-memory database. */
  constructor(options: OpenOptions);
  constructor(path?: string | null, options?: OpenOptions);
  /** Open or create on the libuv thread pool (a large directory loads off the main thread). */
  static open(options: OpenOptions): Promise<Database>;
  static open(path?: string | null, options?: OpenOptions): Promise<Database>;

  readonly dim: number;
  readonly metric: Metric;
  readonly closed: boolean;
  /** Live vectors (stats().count). */
  readonly size: number;
  /** The key-value store as a Map-like object. */
  readonly kv: KeyValueStore;

  /** Flush and free; repeating it is a no-op. QZ_EBUSY while a Promise form runs on this database. */
  close(): void;
  /** close() on the thread pool. */
  closeAsync(): Promise<void>;

  /** Insert under a new id (QZ_EEXISTS if present). The vector is searchable when the call returns. */
  insert(id: Id, vector: Float32Array, metadata?: Metadata): void;
  /** Insert, or replace the vector and metadata of an existing id. */
  upsert(id: Id, vector: Float32Array, metadata?: Metadata): void;
  /**
   * QZ_ENOTFOUND for an unknown id. Several ids (a BigUint64Array or an
   * Array) go in one transaction: all or nothing, so an unknown one leaves
   * every id in place.
   */
  delete(id: Id | BigUint64Array | ReadonlyArray<Id>): void;
  has(id: Id): boolean;
  /** QZ_ENOTFOUND for an unknown id. */
  get(id: Id, options?: { metadata?: 'buffer' }): Entry<Buffer>;
  get(id: Id, options: { metadata: 'string' | 'utf8' }): Entry<string>;
  get(id: Id, options: { metadata: 'json' }): Entry<unknown>;
  get(id: Id, options?: GetOptions): Entry<Buffer | string | unknown>;

  /**
   * Insert n rows (vectors holds n * dim floats, row-major) on the handle's
   * threads. Every row is checked first: on a bad row nothing is inserted
   * and the message names the row.
   */
  insertBatch(ids: BigUint64Array | ReadonlyArray<Id>, vectors: Float32Array, options?: BatchOptions): void;
  /** insertBatch() on the thread pool; the inputs are copied first. */
  insertBatchAsync(ids: BigUint64Array | ReadonlyArray<Id>, vectors: Float32Array, options?: BatchOptions): Promise<void>;

  /**
   * k nearest neighbours. A query of dim floats gives a SearchResult of the
   * found ones; a Float32Array of nq * dim floats (nq >= 2) is a batch and
   * gives a BatchSearchResult, as searchBatch().
   */
  search(query: Float32Array, k: number, options?: SearchOptions): SearchResult | BatchSearchResult;
  /** nq queries (nq * dim floats, row-major) in one call, spread over the handle's threads. */
  searchBatch(queries: Float32Array, k: number, options?: SearchOptions): BatchSearchResult;
  /** searchBatch() on the thread pool; the queries are copied first. */
  searchAsync(queries: Float32Array, k: number, options?: SearchOptions): Promise<BatchSearchResult>;

  stats(): Stats;
  /** Make every acknowledged write durable and compact on disk. */
  flush(): void;
  flushAsync(): Promise<void>;
  /** Unlink deleted vectors from the graph now. */
  compact(): void;
  /** Check the index's invariants (QZ_ECORRUPT naming the first violation). */
  check(): void;
  setParam(name: Param, value: number | bigint): void;

  /** Store value under key (replacing any). */
  kvPut(key: Key, value: Exclude<Metadata, null | undefined>): void;
  /** QZ_ENOTFOUND for a missing key. */
  kvGet(key: Key, options?: { encoding?: 'buffer' }): Buffer;
  kvGet(key: Key, options: { encoding: 'string' | 'utf8' }): string;
  kvGet(key: Key, options: { encoding: 'json' }): unknown;
  kvGet(key: Key, options?: EncodingOptions): Buffer | string | unknown;
  /** QZ_ENOTFOUND for a missing key. */
  kvDelete(key: Key): void;
  /** Every [key, value] whose key starts with prefix, ascending; keys are strings unless prefix is bytes. */
  kvScan(prefix?: string | null): Array<[string, Buffer]>;
  kvScan<E extends EncodingOptions>(prefix: string | null | undefined, options: E): Array<[string, Decoded<E>]>;
  kvScan(prefix: Bytes): Array<[Buffer, Buffer]>;
  kvScan<E extends EncodingOptions>(prefix: Bytes, options: E): Array<[Buffer, Decoded<E>]>;
}

/** Status numbers by name (QZ_OK is 0, errors are negative and never change). */
export const codes: Readonly<Record<Exclude<QuartzErrorCode, 'QZ_EUNKNOWN'> | 'QZ_OK', number>>;
/** libquartz's version, "1.0.0". */
export const version: string;
/** libquartz's active distance kernels. */
export const simd: string;
export const MAX_K: number;
export const MAX_EF: number;
export const MAX_M: number;
export const MAX_DIMENSIONS: number;
export const MAX_METADATA: number;
export const MAX_KEY: number;
/** The id of a padded slot in a batch result, 2n**64n - 1n. */
export const PAD_ID: bigint;
