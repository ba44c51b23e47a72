#!/usr/bin/env bash
# Ingest with and without reacting campaigns (issue 10): what the trigger outbox costs
# /users/track. For each binary given and each mode, starts a fresh SQLite server, optionally
# launches an action-based campaign on `added_to_cart` (a 30-day delay, so its dispatches queue
# but nothing is sent during the run), drives it with wrk (bench/ingest/track.lua: 75 events per
# request over 100,000 users, a fifth of them added_to_cart) and reports events/s and bytes the
# server process wrote to disk per stored event (/proc/PID/io write_bytes).
#
#   bench/messaging/ingest-outbox.sh [DURATION] [CONNECTIONS] BINARY...
#
# e.g. bench/messaging/ingest-outbox.sh 20 128 /path/to/old/beckon .build/release/beckon
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${1:-20}
CONNECTIONS=${2:-128}
shift 2 || true
BINARIES=("$@")
[[ ${#BINARIES[@]} -gt 0 ]] || BINARIES=(.build/release/beckon)
KEY=bench-admin-key-0123456789
PORT=18282
export BECKON_KEY=$KEY
command -v wrk >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2; }
WORK=$(mktemp -d /tmp/beckon-outbox.XXXXXX)
SERVER=0
cleanup() { [[ $SERVER -ne 0 ]] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
api() { curl -sf -X "$1" "http://127.0.0.1:$PORT$2" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' ${3:+-d "$3"}; }

printf '| binary | reacting campaign | events/s | bytes written per event | events stored |\n| --- | --- | ---: | ---: | ---: |\n'
for bin in "${BINARIES[@]}"; do
    for mode in none added_to_cart; do
        dir=$WORK/data-$RANDOM
        BECKON_ADMIN_KEY=$KEY BECKON_LOG_LEVEL=error BECKON_ALLOW_HOSTS=127.0.0.1:9 "$bin" serve --port $PORT --data-dir "$dir" >"$WORK/server.log" 2>&1 &
        SERVER=$!
        for _ in $(seq 1 200); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
        if [[ $mode != none ]]; then
            id=$(api POST /beckon/v1/campaigns '{"name": "Cart", "delivery": {"type": "action_based", "trigger": {"event": "added_to_cart"}, "delay": {"seconds": 2592000}}, "messages": {"webhook": {"url": "http://127.0.0.1:9/hook", "body": "{\"to\": \"{{${user_id}}}\"}"}}}' \
                | python3 -c 'import json,sys; print(json.load(sys.stdin)["campaign_id"])')
            api POST "/beckon/v1/campaigns/$id/launch" '{}' >/dev/null
            sleep 3  # other nodes' caches: 2 s
        fi
        wrk -t1 -c"$CONNECTIONS" -s bench/ingest/track.lua --timeout 10s "http://127.0.0.1:$PORT" -d3s >/dev/null
        before=$(awk '/^write_bytes/ {print $2}' "/proc/$SERVER/io")
        line=$(wrk -t1 -c"$CONNECTIONS" -s bench/ingest/track.lua --timeout 10s "http://127.0.0.1:$PORT" -d"${DURATION}s" | grep RESULT)
        sleep 2  # the outbox consumer catches up; its writes count too
        after=$(awk '/^write_bytes/ {print $2}' "/proc/$SERVER/io")
        kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=0
        events=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from events").fetchone()[0])' "$dir/beckon.sqlite")
        measured=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<" $line")
        rate=$(sed -n 's/.* events_per_s=\([0-9.]*\).*/\1/p' <<<" $line")
        per_event=$(python3 -c "print(round(($after - $before) / max(1, $measured * 75)))")
        printf '| %s | %s | %s | %s | %s |\n' "$bin" "$mode" "$rate" "$per_event" "$events"
        rm -rf "$dir"
    done
done
