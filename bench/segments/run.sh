#!/usr/bin/env bash
# Segment benchmark: the shared generator's dataset loaded into Beckon (SQLite) through /users/track,
# Q1–Q4 timed by `beckon bench segments`, Q5 as 30 daily counts of Q1 (one `--now` per day's end), and
# DuckDB answering the same questions on the same Parquet files in the same run.
#
#   bench/segments/run.sh [USERS] [EVENTS]      (defaults: 200000 4000000; the issue's full size is 1000000 20000000)
#
# Data and database live outside the repository (BECKON_BENCH_DIR, default /tmp/beckon-segment-bench).
# Results: JSON lines on stdout (load summary, Beckon per question, Beckon Q5, DuckDB per question).
set -euo pipefail
cd "$(dirname "$0")/../.."
USERS=${1:-200000}
EVENTS=${2:-4000000}
WORK=${BECKON_BENCH_DIR:-/tmp/beckon-segment-bench}
KEY=bench-admin-key-0123456789
PORT=${PORT:-18090}
THREADS=${THREADS:-32}
GEN=${GEN:-/work/shared/bench/gen_dataset.py}
python3 -c "import numpy, pyarrow, duckdb" 2>/dev/null || pip install -q numpy pyarrow duckdb
swift build -c release --product beckon >/dev/null
BIN=.build/release/beckon
rm -rf "$WORK" && mkdir -p "$WORK"
python3 "$GEN" --users "$USERS" --events "$EVENTS" --out "$WORK/data" --no-csv >/dev/null 2>"$WORK/gen.log"
BECKON_ADMIN_KEY=$KEY BECKON_LOG_LEVEL=warning "$BIN" serve --data-dir "$WORK/db" --port "$PORT" >"$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
# before any event arrives: count product_viewed.brand per value and day
curl -sf -X POST "http://127.0.0.1:$PORT/beckon/v1/segmentable_properties" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d '{"event_name": "product_viewed", "property": "brand"}' >/dev/null
APP=$(grep -o "SDK app id [a-f0-9-]*" "$WORK/server.log" | awk '{print $4}')
echo "{\"load\": $(python3 bench/segments/load.py "$PORT" "$KEY" "$WORK/data/jsonl" "$APP" "$THREADS" 2>"$WORK/load.log")}"
kill $SERVER; wait $SERVER 2>/dev/null || true
trap - EXIT
"$BIN" bench segments --data-dir "$WORK/db" --questions bench/segments/questions.json --now 2025-06-30T15:00:00Z
# Q5: Q1's size at the end of each of the last 30 days (a fresh import has no daily snapshots yet)
python3 -c 'import json; print(json.dumps({"Q1": json.load(open("bench/segments/questions.json"))["Q1"]}))' > "$WORK/q1.json"
start=$(date +%s.%N)
for day in $(seq 0 29); do
    now=$(date -u -d "2025-06-30T15:00:00Z - $day days" +%Y-%m-%dT%H:%M:%SZ)
    "$BIN" bench segments --data-dir "$WORK/db" --questions "$WORK/q1.json" --now "$now" --repeat 1 \
        --membership-checks 0 --snapshot-segments 0 | head -1
done > "$WORK/q5.jsonl"
end=$(date +%s.%N)
python3 - "$WORK/q5.jsonl" "$(echo "$end - $start" | bc)" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
sizes = [r["size"] for r in rows]
print(json.dumps({"engine": "beckon", "question": "Q5", "sizes_min": min(sizes), "sizes_max": max(sizes),
                  "sum_count_ms": round(sum(r["count_ms_median"] for r in rows), 1), "seconds_for_30_processes": float(sys.argv[2]),
                  "sizes_by_days_ago": sizes}))
PY
python3 bench/segments/duckdb_questions.py "$WORK/data/parquet"
