#!/usr/bin/env bash
# Profiles Beckon on SQLite under the ingestion load: perf record (call graphs) of the server for
# SECONDS while wrk drives CONNECTIONS connections, after a warm-up. Prints the top symbols.
#
#   bench/ingest/profile.sh [SECONDS] [CONNECTIONS]     # default 15 s, 128
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_=${1:-15}
CONNECTIONS=${2:-128}
KEY=bench-admin-key-0123456789
PORT=18182
export BECKON_KEY=$KEY
command -v perf >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q linux-perf >&2; }
command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2; }
BIN=${BECKON_BIN:-.build/release/beckon}
WORK=$(mktemp -d /tmp/beckon-profile.XXXXXX)
SERVER=0
cleanup() { [[ $SERVER -ne 0 ]] && { kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; }; rm -rf "$WORK"; }
trap cleanup EXIT
BECKON_ADMIN_KEY=$KEY BECKON_LOG_LEVEL=warning "$BIN" serve --host 127.0.0.1 --port $PORT --data-dir "$WORK/db" 2>"$WORK/server.err" >/dev/null &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
wrk -t1 -c"$CONNECTIONS" -d5s -s bench/ingest/track.lua "http://127.0.0.1:$PORT" | grep RESULT >&2
wrk -t1 -c"$CONNECTIONS" -d"$((SECONDS_ + 2))s" -s bench/ingest/track.lua "http://127.0.0.1:$PORT" | grep RESULT >&2 &
LOAD=$!
sleep 1
DATA=${PERF_DATA:-$WORK/perf.data}
perf record -F 499 -g -p "$SERVER" -o "$DATA" -- sleep "$SECONDS_" 2>/dev/null >/dev/null
wait $LOAD
grep PROBE "$WORK/server.err" >&2 || true
echo "## per thread (share of samples)"
perf report -i "$DATA" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' | head -8
echo "## top symbols, self time"
perf report -i "$DATA" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -${TOP:-45}
echo "## top symbols, inclusive (children), all threads"
perf report -i "$DATA" --children --sort sym --stdio -g none 2>/dev/null | grep -E '^ +[0-9]' | head -${TOP:-45}
