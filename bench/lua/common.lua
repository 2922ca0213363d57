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
