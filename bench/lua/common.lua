-- Shared by every scenario: wrk runs it with the scenario's directory as working directory.
-- Arguments after `--`: a file of keys (one a line, ready for a URL), the Authorization
-- header, and a nonce that keeps new keys of one run apart from those of another.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

keys = {}
counter = 0

function init(args)
  for line in io.lines(args[1]) do
    keys[#keys + 1] = line
  end
  auth = args[2]
  nonce = args[3] or "0"
  math.randomseed(os.time() * 1000 + (tid or 0))
  headers = {["Authorization"] = auth, ["Content-Type"] = "application/json"}
end

function random_key()
  return keys[math.random(#keys)]
end

function next_count()
  counter = counter + 1
  return counter
end

-- Once a run is over: its latency distribution, in steps of a tenth of a percent and finer in
-- the tail, in microseconds, so that bench/run.py can pool the rounds of a scenario into one
-- distribution rather than take the worst of their 99th percentiles.
function done(summary, latency, requests)
  local points = {}
  for q = 1, 999 do
    points[#points + 1] = q / 10
  end
  for _, q in ipairs({99.91, 99.92, 99.93, 99.94, 99.95, 99.96, 99.97, 99.98, 99.99}) do
    points[#points + 1] = q
  end
  for _, q in ipairs(points) do
    io.write(string.format("quantile %.2f %d\n", q, latency:percentile(q)))
  end
end
