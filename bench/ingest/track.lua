-- Varied /users/track bodies: 75 events per request over 100,000 users and 30 days.
local brands = {"Jucy Judy", "Kirsh", "Covernat", "Matin Kim", "Emis", "Sculptor"}
local names = {"product_viewed", "product_viewed", "product_viewed", "search", "added_to_cart"}
local counter = 0
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BECKON_KEY") or "bench-admin-key-0123456789")
local function body()
  local parts = {}
  for i = 1, 75 do
    local user = math.random(1, 100000)
    local day = math.random(1, 28)
    local hour = math.random(0, 23)
    parts[i] = string.format('{"external_id":"u%d","name":"%s","time":"2025-06-%02dT%02d:%02d:00Z","properties":{"brand":"%s","product_id":"P%d","category":"A%04d"}}',
      user, names[math.random(1, #names)], day, hour, math.random(0, 59), brands[math.random(1, #brands)], math.random(1, 5000), math.random(1, 20) * 10)
  end
  return wrk.format(nil, "/users/track", nil, '{"events":[' .. table.concat(parts, ",") .. ']}')
end
-- Bodies are built once per thread (3,000 distinct requests, 225,000 events), so the load
-- generator spends its CPU sending, not formatting.
local bodies = {}
function init(args)
  for i = 1, 3000 do bodies[i] = body() end
end
function request()
  counter = counter + 1
  return bodies[(counter % #bodies) + 1]
end
local non201 = 0
function response(status, headers, body)
  if status ~= 201 then non201 = non201 + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("requests/s %.1f events/s %.0f p50 %.1f ms p99 %.1f ms errors %d\n",
    summary.requests / (summary.duration / 1e6), 75 * summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
