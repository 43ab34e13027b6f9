-- A fixed-window counter, atomic because Redis runs a script as one command.
-- KEYS[1]: the counter's key; ARGV[1]: the window's length in milliseconds.
-- Returns {count, ttl_ms}: the request is admitted when count <= the limit.
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  -- Never let a counter live without an expiry: it would throttle forever.
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {count, ttl}
