-- wrk script for load_fidelity.py. WRK_PORTS: one 127.0.0.1 port per wrk thread, in turn
-- (thread.addr), so that connections spread evenly over gunicorn instances; WRK_DELAY_MS:
-- if set, each connection waits that long after every answer (wrk's only pacing); done()
-- prints the summary with p95, which --latency does not.

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

local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
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
