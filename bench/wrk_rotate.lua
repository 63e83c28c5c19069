-- wrk script for the client comparison in README.md: POST pre-built Caliper bodies in turn.
-- Make the bodies with `python bench/compare_clients.py bodies --out /tmp/bodies.ndjson`, then
-- `wrk -t1 -c64 -d5s -s bench/wrk_rotate.lua http://127.0.0.1:18080/caliper -- /tmp/bodies.ndjson`.
local requests = {}
local index = 0

function init(args)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer bench"}
  for line in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("POST", nil, headers, line)
  end
end

function request()
  index = index % #requests + 1
  return requests[index]
end
