-- wrk script for load_fidelity.py.
-- WRK_PORTS: one 127.0.0.1 port per wrk thread, in turn (thread.addr), so that connections
--   spread evenly over gunicorn instances.
-- WRK_RATE: if set, a fixed arrival rate (requests/s over the WRK_THREADS threads): each keeps
--   a uniform schedule of slots, and a connection that is free claims the next slot and waits
--   for it through delay() (whole milliseconds, wrk's unit); slots that are already past go
--   at once, as in wrk2. Latency still runs from the actual send. The wall clock comes from
--   clock_gettime through LuaJIT's FFI (wrk's Lua has none).
-- done() prints the summary with p95, which --latency does not.

local ports = {}
for port in string.gmatch(os.getenv("WRK_PORTS") or "", "%d+") do
  table.insert(ports, port)
end
local threads = 0

function setup(thread)
  threads = threads + 1
  if #ports > 0 then
    thread.addr = wrk.lookup("127.0.0.1", ports[(threads - 1) % #ports + 1])[1]
  end
end

local rate = tonumber(os.getenv("WRK_RATE") or "")
if rate then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } fidelity_timespec;
    int clock_gettime(int clock, fidelity_timespec *ts);
  ]]
  local ts = ffi.new("fidelity_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval_ms = 1000 * tonumber(os.getenv("WRK_THREADS") or "1") / rate
  local next_ms = nil

  function delay()
    local now = now_ms()
    if next_ms == nil then
      next_ms = now
    end
    local slot = next_ms
    next_ms = next_ms + interval_ms
    local wait = slot - now
    if wait <= 0 then
      return 0
    end
    return math.floor(wait + 0.5)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("FIDELITY requests %d\n", summary.requests))
  io.write(string.format("FIDELITY duration_us %d\n", summary.duration))
  io.write(string.format("FIDELITY errors %d\n",
    e.connect + e.read + e.write + e.status + e.timeout))
  for _, q in ipairs({50, 95, 99}) do
    io.write(string.format("FIDELITY p%d_us %d\n", q, latency:percentile(q)))
  end
end
