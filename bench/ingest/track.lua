-- wrk script for POST /users/track: 75 events per request over 100,000 users and 28 days
-- (product_viewed / search / added_to_cart with brand, product_id and category properties).
--
-- Bodies are built once per wrk thread (3,000 distinct requests, 225,000 events, ~13 KB each)
-- so the load generator spends its CPU sending, not formatting. No response() callback: wrk then
-- skips handing every response to Lua; it still counts non-2xx/3xx answers in errors.status,
-- and run.sh checks afterwards that the database holds 75 events per answered request.
local brands = {"Jucy Judy", "Kirsh", "Covernat", "Matin Kim", "Emis", "Sculptor"}
local names = {"product_viewed", "product_viewed", "product_viewed", "search", "added_to_cart"}
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BECKON_KEY") or "bench-admin-key-0123456789")

local function body()
  local parts = {}
  for i = 1, 75 do
    local user = math.random(1, 100000)
    parts[i] = string.format(
      '{"external_id":"u%d","name":"%s","time":"2025-06-%02dT%02d:%02d:%02dZ","properties":{"brand":"%s","product_id":"P%d","category":"A%04d"}}',
      user, names[math.random(1, #names)], math.random(1, 28), math.random(0, 23), math.random(0, 59), math.random(0, 59),
      brands[math.random(1, #brands)], math.random(1, 5000), math.random(1, 20) * 10)
  end
  return wrk.format(nil, "/users/track", nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end

local bodies = {}
local thread_seed = 0
function setup(thread)
  thread_seed = thread_seed + 1
  thread:set("seed", thread_seed)
end
function init(args)
  math.randomseed(1000 + (seed or 0))
  for i = 1, 3000 do bodies[i] = body() end
end
function request()
  counter = counter + 1
  return bodies[(counter % #bodies) + 1]
end
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.2f rps=%.1f events_per_s=%.0f p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f non2xx=%d socket_errors=%d\n",
    summary.requests, seconds, summary.requests / seconds, 75 * summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
