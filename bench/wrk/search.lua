-- search.lua: POST QZ_WRK_PATH (a .../vector/search route) with the query
-- bodies of QZ_WRK_BODIES, round-robin, each wrk thread from its own offset.
package.path = os.getenv("QZ_WRK_DIR") .. "/?.lua;" .. package.path
local common = require("common")
local bodies, headers, path, i

function setup(thread)
  thread:set("offset", math.random(0, 1000000))
end

function init(args)
  bodies = common.load_bodies()
  headers = common.headers()
  path = os.getenv("QZ_WRK_PATH")
  i = (tonumber(offset) or 0) % #bodies
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", path, headers, bodies[i])
end

done = common.done
