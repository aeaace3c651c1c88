# workerd configuration of the QuartzDB Worker, for running it locally on the
# real runtime (scripts/worker-dev.sh copies this file next to the modules in
# BUILD/worker/ and starts `workerd serve` on it). Durable Objects are
# SQLite-backed (enableSql) and stored on local disk in the "do-storage"
# directory service; worker-dev.sh points it at DATA_DIR with
# --directory-path and picks the address with --socket-addr.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "quartz", worker = .quartzWorker),
    (name = "do-storage", disk = (path = "data", writable = true)),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:8787", http = (), service = "quartz") ],
);

const quartzWorker :Workerd.Worker = (
  compatibilityDate = "2025-09-01",
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "objects.js", esModule = embed "objects.js"),
    (name = "rest.js", esModule = embed "rest.js"),
    (name = "quartz.mjs", esModule = embed "quartz.mjs"),
    (name = "host_storage.mjs", esModule = embed "host_storage.mjs"),
    (name = "quartz_wasm.mjs", esModule = embed "quartz_wasm.mjs"),
    (name = "quartz_wasm.wasm", wasm = embed "quartz_wasm.wasm"),
  ],
  durableObjectNamespaces = [
    (className = "QuartzShard", uniqueKey = "quartzdb-shard-v1", enableSql = true),
    (className = "QuartzCatalog", uniqueKey = "quartzdb-catalog-v1", enableSql = true),
    (className = "QuartzKV", uniqueKey = "quartzdb-kv-v1", enableSql = true),
  ],
  durableObjectStorage = (localDisk = "do-storage"),
  bindings = [
    (name = "SHARDS", durableObjectNamespace = "QuartzShard"),
    (name = "CATALOG", durableObjectNamespace = "QuartzCatalog"),
    (name = "KV", durableObjectNamespace = "QuartzKV"),
    (name = "QUARTZ_API_KEY", fromEnvironment = "QUARTZ_API_KEY"),
    (name = "QUARTZ_API_KEY_RO", fromEnvironment = "QUARTZ_API_KEY_RO"),
    (name = "QUARTZ_API_KEYS", fromEnvironment = "QUARTZ_API_KEYS"),
    (name = "QUARTZ_SHARDS", fromEnvironment = "QUARTZ_SHARDS"),
    (name = "QUARTZ_MAX_BODY", fromEnvironment = "QUARTZ_MAX_BODY"),
    (name = "QUARTZ_MAX_BATCH", fromEnvironment = "QUARTZ_MAX_BATCH"),
  ],
);
