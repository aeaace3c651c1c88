-- common.lua: shared by the wrk scripts of bench/bench_rest.sh.
-- Reads request bodies (one JSON object per line) from the file named by the
-- environment variable QZ_WRK_BODIES, sends them round-robin as POSTs to
-- QZ_WRK_PATH with the API key in QZ_WRK_KEY (if set), and at the end prints
-- one machine-readable line:
--   RESULT requests=N seconds=S rps=R p50_ms=A p99_ms=B errors=E non2xx=X
local M = {}

function M.load_bodies()
  local path = os.getenv("QZ_WRK_BODIES")
  assert(path, "QZ_WRK_BODIES is not set")
  local t = {}
  for line in io.lines(path) do
    if #line > 0 then t[#t + 1] = line end
  end
  assert(#t > 0, "no bodies in " .. path)
  return t
end

function M.headers()
  local h = {["Content-Type"] = "application/json"}
  local key = os.getenv("QZ_WRK_KEY")
  if key and #key > 0 then h["Authorization"] = "Bearer " .. key end
  return h
end

function M.done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT requests=%d seconds=%.2f rps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d non2xx=%d\n",
    summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, errors, e.status))
end

return M
