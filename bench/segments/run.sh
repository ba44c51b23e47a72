#!/usr/bin/env bash
# Segment benchmark: the shared generator's dataset loaded into Beckon (SQLite) through /users/track,
# Q1–Q4 timed by `beckon bench segments`, Q5 as 30 daily counts of Q1, and DuckDB answering the same
# questions on the same data in the same run.
#
#   bench/segments/run.sh [USERS] [EVENTS]      (defaults: 100000 2000000)
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${1:-100000}
EVENTS=${2:-2000000}
WORK=${BECKON_BENCH_DIR:-/tmp/beckon-segment-bench}
KEY=bench-admin-key-0123456789
PORT=18190
python3 -c "import numpy, pyarrow, duckdb" 2>/dev/null || pip install -q numpy pyarrow duckdb
swift build -c release --product beckon >/dev/null
BIN=.build/release/beckon
rm -rf "$WORK" && mkdir -p "$WORK"
python3 ../shared/bench/gen_dataset.py --users "$USERS" --events "$EVENTS" --out "$WORK/data" --no-csv >/dev/null
BECKON_ADMIN_KEY=$KEY BECKON_LOG_LEVEL=warning "$BIN" serve --data-dir "$WORK/db" --port $PORT >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
curl -sf -X POST "http://127.0.0.1:$PORT/beckon/v1/segmentable_properties" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"event_name": "product_viewed", "property": "brand"}' >/dev/null
APP=$(grep -o "SDK app id [a-f0-9-]*" "$WORK/server.log" | awk '{print $4}')
echo "load $(python3 bench/segments/load.py $PORT $KEY "$WORK/data/jsonl" "$APP")"
kill $SERVER; wait $SERVER 2>/dev/null || true
"$BIN" bench segments --data-dir "$WORK/db" --questions bench/segments/questions.json --now 2025-06-30T15:00:00Z
python3 - "$WORK" <<'PY' > "$WORK/q1.json"
import json, sys
print(json.dumps({"Q1": json.load(open("bench/segments/questions.json"))["Q1"]}))
PY
start=$(date +%s.%N)
for day in $(seq 0 29); do
    now=$(date -u -d "2025-06-30T15:00:00Z - $day days" +%Y-%m-%dT%H:%M:%SZ)
    "$BIN" bench segments --data-dir "$WORK/db" --questions "$WORK/q1.json" --now "$now" --repeat 1 \
        --membership-checks 0 --snapshot-segments 0 | python3 -c 'import json,sys; d=json.loads(sys.stdin.readline()); print(d["size"])'
done > "$WORK/q5.txt"
end=$(date +%s.%N)
echo "{\"engine\": \"beckon\", \"question\": \"Q5\", \"sizes_min\": $(sort -n "$WORK/q5.txt" | head -1), \"sizes_max\": $(sort -n "$WORK/q5.txt" | tail -1), \"seconds_for_30_processes\": $(echo "$end - $start" | bc)}"
python3 bench/segments/duckdb_questions.py "$WORK/data/parquet"
