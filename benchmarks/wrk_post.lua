-- wrk script of benchmarks/serving.py: POSTs the bodies of $BENCH_BODIES (one JSON document
-- a line) to $BENCH_PATH, cycling through them, and prints one JSON line at the end:
-- requests, duration, wrk's error counts and latency percentiles (microseconds).
local requests_ = {}
local next_ = 0

function init(args)
  local path = os.getenv("BENCH_PATH")
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    requests_[#requests_ + 1] = wrk.format("POST", path, headers, line)
  end
  next_ = math.random(#requests_) -- each thread starts elsewhere in the list
end

function request()
  next_ = next_ % #requests_ + 1
  return requests_[next_]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
