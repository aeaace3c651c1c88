-- insert.lua: POST QZ_WRK_PATH (a .../vector/insert route); every request
-- inserts a new id. Bodies in QZ_WRK_BODIES are vectors as JSON arrays, one
-- per line; ids are QZ_WRK_ID_BASE + thread * 2^32 + n, so wrk threads never
-- collide and a 409 would show up as a non-2xx response.
package.path = os.getenv("QZ_WRK_DIR") .. "/?.lua;" .. package.path
local common = require("common")
local vecs, headers, path, n, base
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  vecs = common.load_bodies()
  headers = common.headers()
  path = os.getenv("QZ_WRK_PATH")
  base = tonumber(os.getenv("QZ_WRK_ID_BASE") or "0") + (tonumber(tid) or 0) * 4294967296
  n = 0
end

function request()
  n = n + 1
  local body = string.format('{"id": %d, "vector": %s}', base + n, vecs[(n - 1) % #vecs + 1])
  return wrk.format("POST", path, headers, body)
end

done = common.done
