#!/usr/bin/env bash
# Ingestion benchmark (issue 2): sustained POST /users/track in 75-event batches from wrk, a
# separate load process on the same machine, into Beckon on SQLite (synchronous=NORMAL, and FULL)
# and on a throw-away PostgreSQL cluster (fsync and synchronous_commit on); then the ceiling: the
# same rows written straight into SQLite by Benchmarks/ingest-ceiling, with no HTTP, no JSON and
# transactions of 75 rows (one request per commit) and of 75 × connections rows (a full group).
#
#   bench/ingest/run.sh [DURATION_SECONDS] [CONNECTIONS ...]      # default: 20 s, 32 and 128
#
# Environment: WARMUP (seconds, default 3), WRK_THREADS (default 1), CEILING_ROWS (default
# 600000), TARGETS (default "sqlite sqlite-full postgres"). Every (target, connections) pair gets
# a fresh database and a fresh server; the warm-up runs on it before the measured run.
# Prints a markdown table; raw lines go to stderr as they come.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${1:-20}
shift || true
CONNECTIONS=("$@")
[[ ${#CONNECTIONS[@]} -gt 0 ]] || CONNECTIONS=(32 128)
WARMUP=${WARMUP:-3}
WRK_THREADS=${WRK_THREADS:-1}
CEILING_ROWS=${CEILING_ROWS:-600000}
read -r -a TARGETS <<<"${TARGETS:-sqlite sqlite-full postgres}"
KEY=bench-admin-key-0123456789
PORT=18181
PG_PORT=15439
export BECKON_KEY=$KEY

log() { printf '==> %s\n' "$*" >&2; }

# --- Tools and binaries ------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    log "installing wrk"
    DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >&2
fi
for tool in curl python3; do command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 1; }; done
log "building beckon (release)"
swift build -c release --product beckon >&2
log "building ingest-ceiling (release)"
swift build -c release --package-path Benchmarks --scratch-path Benchmarks/.build --product ingest-ceiling >&2
BIN=.build/release/beckon
CEILING=Benchmarks/.build/release/ingest-ceiling

PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ " ${TARGETS[*]} " == *" postgres "* && -z "$PG_BIN" ]]; then
    log "installing PostgreSQL"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql >&2
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
RUN_AS=()
if [[ $(id -u) -eq 0 ]]; then
    id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    RUN_AS=(runuser -u postgres --)
fi

# --- Cleanup -----------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/beckon-ingest.XXXXXX)
chmod 755 "$WORK"
SERVER=0
PG_STARTED=0
RESULTS=$WORK/results.tsv
stop_server() {
    if [[ $SERVER -ne 0 ]]; then
        kill "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
        SERVER=0
    fi
}
cleanup() {
    stop_server
    if [[ $PG_STARTED -eq 1 ]]; then
        "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -m fast -w stop >/dev/null 2>&1 \
            || "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() {
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && return 0
        kill -0 "$SERVER" 2>/dev/null || { echo "server exited:" >&2; cat "$1" >&2; exit 1; }
        sleep 0.1
    done
    echo "server did not start" >&2; exit 1
}

# CPU seconds (user, system) of a process so far.
cpu_of() { awk '{printf "%.2f %.2f", $14 / 100, $15 / 100}' "/proc/$1/stat"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }

# load TARGET CONNECTIONS COUNT_COMMAND: warm-up, measured run, CPU split, row check.
load() {
    local target=$1 connections=$2 count_command=$3
    local wrk=(wrk -t"$WRK_THREADS" -c"$connections" -s bench/ingest/track.lua --timeout 10s "http://127.0.0.1:$PORT")
    local warm; warm=$("${wrk[@]}" -d"${WARMUP}s" | grep RESULT)
    local server_before; server_before=$(cpu_of "$SERVER")
    local line; line=$(/usr/bin/time -f "WRKCPU %U %S" -o "$WORK/wrk.time" "${wrk[@]}" -d"${DURATION}s" | grep RESULT)
    local server_after; server_after=$(cpu_of "$SERVER")
    stop_server  # everything answered is committed; count what landed
    local stored; stored=$(eval "$count_command")
    local answered=$(( $(field requests "$warm") + $(field requests "$line") ))
    local seconds; seconds=$(field seconds "$line")
    read -r wrk_user wrk_sys _ < <(awk '/WRKCPU/ {print $2, $3}' "$WORK/wrk.time")
    read -r su0 ss0 <<<"$server_before"
    read -r su1 ss1 <<<"$server_after"
    local server_cores wrk_cores
    server_cores=$(awk -v u="$su1" -v u0="$su0" -v s="$ss1" -v s0="$ss0" -v t="$seconds" \
        'BEGIN {printf "%.2f (%.2f user + %.2f sys)", (u - u0 + s - s0) / t, (u - u0) / t, (s - s0) / t}')
    wrk_cores=$(awk -v u="$wrk_user" -v s="$wrk_sys" -v t="$seconds" 'BEGIN {printf "%.2f", (u + s) / t}')
    log "$target c=$connections $line server_cores=$server_cores wrk_cores=$wrk_cores events_in_db=$stored answered_x75=$((answered * 75))"
    if [[ $(field non2xx "$line") != 0 || $(field non2xx "$warm") != 0 ]]; then
        echo "run.sh: $target answered non-2xx statuses" >&2; exit 1
    fi
    if (( stored < answered * 75 )); then
        echo "run.sh: $target stored $stored events but acknowledged $((answered * 75))" >&2; exit 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$connections" "$(field events_per_s "$line")" \
        "$(field p50_ms "$line")" "$(field p99_ms "$line")" "$server_cores" "$wrk_cores" "$(field socket_errors "$line")" >>"$RESULTS"
}

serve() { # serve LOG ARGS...
    local logfile=$1; shift
    BECKON_ADMIN_KEY=$KEY BECKON_LOG_LEVEL=warning "$BIN" serve --host 127.0.0.1 --port $PORT "$@" >"$logfile" 2>&1 &
    SERVER=$!
    wait_ready "$logfile"
}

start_postgres() {
    [[ $PG_STARTED -eq 1 ]] && return
    log "PostgreSQL: $("$PG_BIN/postgres" --version)"
    mkdir -p "$WORK/pg" && chown postgres "$WORK/pg" 2>/dev/null || true
    "${RUN_AS[@]}" "$PG_BIN/initdb" -D "$WORK/pg" -U beckon --auth=trust >/dev/null
    "${RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$WORK/pg" -l "$WORK/pg/server.log" \
        -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c shared_buffers=256MB -c max_wal_size=4GB" -w start >/dev/null
    PG_STARTED=1
}
psql_q() { "$PG_BIN/psql" -h 127.0.0.1 -p $PG_PORT -U beckon -At "$@"; }

# --- Beckon under load -------------------------------------------------------------------------
for target in "${TARGETS[@]}"; do
    for connections in "${CONNECTIONS[@]}"; do
        case $target in
        sqlite | sqlite-full)
            dir=$WORK/$target-$connections
            flags=(--data-dir "$dir")
            [[ $target == sqlite-full ]] && flags+=(--sqlite-synchronous-full)
            serve "$WORK/$target-$connections.log" "${flags[@]}"
            load "$target" "$connections" "python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from events\").fetchone()[0])' $dir/beckon.sqlite"
            rm -rf "$dir"
            ;;
        postgres)
            start_postgres
            db=ingest_$connections
            psql_q -d postgres -c "CREATE DATABASE $db" >/dev/null
            serve "$WORK/$target-$connections.log" --database "postgres://beckon@127.0.0.1:$PG_PORT/$db"
            commits_before=$(psql_q -d postgres -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'")
            load "$target" "$connections" "psql_q -d $db -c 'SELECT count(*) FROM events'"
            commits=$(( $(psql_q -d postgres -c "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'") - commits_before ))
            log "postgres c=$connections: $commits transactions committed in $db during warm-up + run (includes reads)"
            ;;
        *) echo "run.sh: unknown target $target" >&2; exit 2 ;;
        esac
    done
done

# --- Ceiling -----------------------------------------------------------------------------------
batches=75
for connections in "${CONNECTIONS[@]}"; do batches+=",$((75 * connections))"; done
log "ceiling: $CEILING --rows $CEILING_ROWS --batches $batches"
"$CEILING" --rows "$CEILING_ROWS" --batches "$batches" >"$WORK/ceiling.json"
cat "$WORK/ceiling.json" >&2
CEILING_FULL=""
if [[ " ${TARGETS[*]} " == *" sqlite-full "* ]]; then
    "$CEILING" --rows "$CEILING_ROWS" --batches "$batches" --synchronous FULL >"$WORK/ceiling-full.json"
    cat "$WORK/ceiling-full.json" >&2
    CEILING_FULL=$WORK/ceiling-full.json
fi

# --- Table -------------------------------------------------------------------------------------
python3 - "$RESULTS" "$WORK/ceiling.json" "$CEILING_FULL" <<'EOF'
import json, sys
results = [line.rstrip("\n").split("\t") for line in open(sys.argv[1]) if line.strip()]
ceilings = {"NORMAL": json.load(open(sys.argv[2]))}
if sys.argv[3]:
    ceilings["FULL"] = json.load(open(sys.argv[3]))
rate = {(mode, r["rows_per_transaction"]): r["rows_per_s"] for mode, c in ceilings.items() for r in c["results"]}
print("| target | connections | events/s | p50 ms | p99 ms | ratio to ceiling at 75 × connections rows/commit | server CPU (cores) | wrk CPU (cores) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
for target, connections, events, p50, p99, server, wrk, socket_errors in results:
    mode = "FULL" if target == "sqlite-full" else "NORMAL"
    ceiling = rate.get((mode, 75 * int(connections)))
    ratio = f"{float(events) / ceiling:.2f}" if ceiling else "–"
    name = {"sqlite": "Beckon, SQLite (NORMAL)", "sqlite-full": "Beckon, SQLite (FULL)", "postgres": "Beckon, PostgreSQL"}[target]
    print(f"| {name} | {connections} | {int(events):,} | {p50} | {p99} | {ratio} | {server} | {wrk} |")
for mode, c in ceilings.items():
    for r in c["results"]:
        print(f"| ceiling, SQLite {c['sqlite_version']} ({mode}), {r['rows_per_transaction']:,} rows/commit | – | {r['rows_per_s']:,} | – | – | – | – | – |")
EOF
