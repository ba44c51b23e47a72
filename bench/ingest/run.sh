#!/usr/bin/env bash
# Ingestion benchmark: sustained POST /users/track in 75-event batches from wrk (a separate
# process) into Beckon on SQLite and on PostgreSQL, then the ceiling (the same rows written
# straight into SQLite by ceiling.py). Prints one line per run.
#
#   bench/ingest/run.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-20}
CONNECTIONS=${2:-128}
KEY=bench-admin-key-0123456789
PORT=18181
export BECKON_KEY=$KEY

command -v wrk >/dev/null || { apt-get update -q && apt-get install -y -q wrk; }
swift build -c release --product beckon >/dev/null
BIN=.build/release/beckon
WORK=$(mktemp -d /tmp/beckon-ingest.XXXXXX)
SERVER=0
PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
cleanup() {
    [[ $SERVER -ne 0 ]] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null || true
    if [[ -d "$WORK/pg" ]]; then runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_ready() {
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0; sleep 0.1; done
    echo "server did not start" >&2; exit 1
}

cpu_seconds() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }

load() {
    local label=$1
    wrk -t2 -c"$CONNECTIONS" -d3s -s bench/ingest/track.lua "http://127.0.0.1:$PORT" >/dev/null
    local before; before=$(cpu_seconds "$SERVER")
    local line; line=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" -s bench/ingest/track.lua "http://127.0.0.1:$PORT" | grep 'events/s')
    local after; after=$(cpu_seconds "$SERVER")
    echo "$label connections=$CONNECTIONS $line server_cpu_s=$(echo "$after - $before" | bc)"
}

BECKON_ADMIN_KEY=$KEY BECKON_LOG_LEVEL=warning "$BIN" serve --data-dir "$WORK/sqlite" --port $PORT >"$WORK/sqlite.log" 2>&1 &
SERVER=$!
wait_ready
load "sqlite"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=0

if [[ -n "$PG_BIN" ]]; then
    mkdir -p "$WORK/pg" && chown postgres "$WORK" "$WORK/pg"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$WORK/pg" -U beckon --auth=trust >/dev/null
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/pg" -o "-p 15439 -k $WORK/pg -c listen_addresses=127.0.0.1" -w start >/dev/null
    runuser -u postgres -- "$PG_BIN/createdb" -h 127.0.0.1 -p 15439 -U beckon ingest
    BECKON_ADMIN_KEY=$KEY BECKON_LOG_LEVEL=warning "$BIN" serve --database postgres://beckon@127.0.0.1:15439/ingest --port $PORT >"$WORK/pg.log" 2>&1 &
    SERVER=$!
    wait_ready
    load "postgres"
    kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=0
fi

echo "ceiling $(python3 bench/ingest/ceiling.py --rows 600000 --batches 75,4800)"
