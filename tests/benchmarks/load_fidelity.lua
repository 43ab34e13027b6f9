-- wrk script for load_fidelity.py.
-- WRK_PORTS: one 127.0.0.1 port per wrk thread, in turn (thread.addr), so that connections
--   spread evenly over gunicorn instances.
-- WRK_RATE: if set, a fixed arrival rate (requests/s over the WRK_THREADS threads), as
--   run_load schedules it: slot g is due at t0 + g / rate, thread k takes the slots
--   g = k (mod threads), and a connection that is free claims its thread's next slot and
--   waits for it through delay() (whole milliseconds, wrk's unit); past slots go at once, as
--   in wrk2. Latency still runs from the actual send. The wall clock comes from
--   clock_gettime through LuaJIT's FFI (wrk's Lua has none).
-- done() prints the summary with p95, which --latency does not.

local ports = {}
for port in string.gmatch(os.getenv("WRK_PORTS") or "", "%d+") do
  table.insert(ports, port)
end
local rate = tonumber(os.getenv("WRK_RATE") or "")
local threads_total = tonumber(os.getenv("WRK_THREADS") or "1")
local threads = 0

local now_ms = nil
if rate then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } fidelity_timespec;
    int clock_gettime(int clock, fidelity_timespec *ts);
  ]]
  local ts = ffi.new("fidelity_timespec")
  now_ms = function()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
  end
end

function setup(thread)
  threads = threads + 1
  if #ports > 0 then
    thread.addr = wrk.lookup("127.0.0.1", ports[(threads - 1) % #ports + 1])[1]
  end
  if rate then
    thread:set("phase", threads - 1)
    if t0_ms == nil then
      t0_ms = now_ms()
    end
    thread:set("t0_ms", t0_ms)
  end
end

if rate then
  local next_slot = nil

  -- Slot g is due at t0_ms + g / rate; this thread takes g = phase, phase + threads, ...
  function delay()
    local now = now_ms()
    if next_slot == nil then -- the first of this thread's slots not yet past
      local g = math.ceil((now - t0_ms) * rate / 1000)
      next_slot = g + (phase - g) % threads_total
    end
    local due = t0_ms + next_slot * 1000 / rate
    next_slot = next_slot + threads_total
    local wait = due - now
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
