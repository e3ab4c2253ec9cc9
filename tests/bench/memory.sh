#!/usr/bin/env bash
# memory.sh — Redis memory stays flat while jobs flow (CONTRACT 4.7).
#
# Starts a private redis-server (unix socket, no persistence) and ONE
# long-running lanework-worker (--isolation thread) with a short retention
# for succeeded jobs and a small event-stream cap, then pushes --rounds rounds
# of --per-round no-op jobs through it (one `lanework enqueue --batch` per
# round). After each round it waits until every job succeeded, then until the
# retention has passed and Redis has expired the records, and prints Redis
# used_memory, the number of keys, the event stream's length and the worker's
# RSS.
#
# Exit 1 when the last round's used_memory (after expiry) is more than
# --max-growth times the first round's, when the event stream outgrows its cap
# (more than 2x --events-max), or when any job did not succeed. Stops by itself.
#
# usage: tests/bench/memory.sh [--rounds N] [--per-round N] [--keep-succeeded S]
#          [--events-max N] [--max-growth X] [--quick] [--keep]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

ROUNDS=10
PER=20000
KEEP_OK=2
EVENTS_MAX=10000
MAX_GROWTH=1.5
CONC=8

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    cat <<'EOF'
options:
  --rounds N           rounds (default 10)
  --per-round N        jobs per round (default 20000)
  --keep-succeeded S   retention of succeeded jobs, seconds (default 2)
  --events-max N       cap of the event stream (default 10000)
  --max-growth X       allowed last/first used_memory ratio (default 1.5)
  --quick              smoke run: 4 rounds of 5000
  --keep               keep the temp dir (redis log, worker log)
environment: BENCH_BUILD (default build-bench), TMPDIR
EOF
}

posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, not '$2'"; }

while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) posint "$1" "${2:-}"; ROUNDS=$2; shift 2 ;;
    --per-round) posint "$1" "${2:-}"; PER=$2; shift 2 ;;
    --keep-succeeded) posint "$1" "${2:-}"; KEEP_OK=$2; shift 2 ;;
    --events-max) posint "$1" "${2:-}"; EVENTS_MAX=$2; shift 2 ;;
    --max-growth)
        [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--max-growth needs a number"
        MAX_GROWTH=$2
        shift 2
        ;;
    --quick) ROUNDS=4; PER=5000; shift ;;
    --keep) BENCH_KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done

bench_build
bench_setup memory

# Retention and cap are shared settings: the worker applies them when it
# records outcomes, the CLI when it appends job.queued events.
SHARED=(--keep-succeeded "$KEEP_OK" --events-max "$EVENTS_MAX")
EVENTS_KEY="lw:{$BENCH_TENANT}:events"

# Redis's slowlog keeps (up to 128) commands slower than 10 ms with their
# arguments: big enqueue batches land there and would show as a slow rise of
# used_memory until it is full. It is Redis's own bounded diagnostic, not
# lanework data: count its entries and empty it before each reading.
SLOW_TOTAL=0
slowlog_reset() {
    local n
    n=$(rcli SLOWLOG LEN)
    SLOW_TOTAL=$((SLOW_TOTAL + n))
    rcli SLOWLOG RESET >/dev/null
}
used_memory() { rinfo used_memory memory; }
db_keys() { rcli INFO keyspace | tr -d '\r' | sed -n 's/^db0:keys=\([0-9]*\),.*/\1/p' | awk '{ print $1 + 0 } END { if (NR == 0) print 0 }'; }
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }

JOBS_FILE=$BENCH_DIR/jobs-$PER.jsonl
make_jobs "$PER" "$JOBS_FILE"

WLOG=$BENCH_DIR/worker.log
"$WORKER" --redis "$REDIS_URL" --registry "$REGISTRY" "${SHARED[@]}" --name bench-memory \
    --isolation thread --concurrency "$CONC" >"$WLOG" 2>&1 &
WPID=$!
BENCH_PIDS+=("$WPID")
sleep 0.3
kill -0 "$WPID" 2>/dev/null || die "worker did not start: $(tail -3 "$WLOG")"

say "memory: $ROUNDS rounds of $PER jobs through one worker (thread, concurrency $CONC),"
say "        --keep-succeeded $KEEP_OK s, --events-max $EVENTS_MAX; temp dir $BENCH_DIR"
T_START=$(now)
BASE_MEM=$(used_memory)
BASE_KEYS=$(db_keys)

echo
echo "lanework memory check: $ROUNDS rounds x $PER no-op jobs, one worker (--isolation thread --concurrency $CONC),"
echo "--keep-succeeded $KEEP_OK s, --events-max $EVENTS_MAX; redis $(redis-server --version | awk '{ print $3 }' | sed 's/v=//')"
echo
printf '%5s %9s %8s %9s %14s %14s %6s %8s %12s %12s\n' round jobs "round s" "jobs/s" "mem drained" \
    "mem expired" keys "events" "worker RSS" "worker HWM"
printf '%5s %9s %8s %9s %14s %14s %6s %8s %12s %12s\n' 0 0 - - - "$(mib "$BASE_MEM") MiB" "$BASE_KEYS" 0 \
    "$(mib $(($(proc_kb "$WPID" VmRSS) * 1024))) MiB" "$(mib $(($(proc_kb "$WPID" VmHWM) * 1024))) MiB"

declare -a MEMS=()
FAIL=0
EXPIRY_INCOMPLETE=0
MAX_XLEN=0
for R in $(seq "$ROUNDS"); do
    want=$((R * PER))
    t0=$(now)
    enqueue_file "$JOBS_FILE" "${SHARED[@]}"
    # Wait for the worker to finish the round.
    deadline=$(calc "$t0 + 60 + $PER / 500")
    while :; do
        read -r q s a ok f c e < <(tenant_stats)
        if [ $((ok + f + c + e)) -ge "$want" ] && [ $((q + s + a)) -eq 0 ]; then break; fi
        kill -0 "$WPID" 2>/dev/null || die "round $R: the worker died: $(tail -3 "$WLOG")"
        awk -v n="$(now)" -v d="$deadline" 'BEGIN { exit !(n > d) }' &&
            die "round $R: jobs not finished in time (stats q s a ok f c e: $q $s $a $ok $f $c $e)"
        sleep 0.05
    done
    t1=$(now)
    if [ "$ok" -ne "$want" ] || [ $((f + c + e)) -ne 0 ]; then
        die "round $R: expected $want succeeded, stats say ok $ok failed $f cancelled $c expired $e"
    fi
    slowlog_reset
    mem_drained=$(used_memory)
    # Retention: the records of this round expire KEEP_OK s after they
    # finished; wait for Redis to have removed them (only a handful of fixed
    # keys remain: stats, events, fence, queues, the worker directory).
    sleep "$KEEP_OK"
    exp_deadline=$(calc "$(now) + 30")
    while [ "$(db_keys)" -gt $((BASE_KEYS + 16)) ]; do
        if awk -v n="$(now)" -v d="$exp_deadline" 'BEGIN { exit !(n > d) }'; then
            EXPIRY_INCOMPLETE=1
            break
        fi
        sleep 0.1
    done
    slowlog_reset
    mem=$(used_memory)
    MEMS+=("$mem")
    keys=$(db_keys)
    xlen=$(rcli XLEN "$EVENTS_KEY")
    [ "$xlen" -gt "$MAX_XLEN" ] && MAX_XLEN=$xlen
    printf '%5s %9s %8.2f %9.0f %14s %14s %6s %8s %12s %12s\n' "$R" "$want" "$(calc "$t1 - $t0")" \
        "$(calc "$PER / ($t1 - $t0)")" "$(mib "$mem_drained") MiB" "$(mib "$mem") MiB" "$keys" "$xlen" \
        "$(mib $(($(proc_kb "$WPID" VmRSS) * 1024))) MiB" "$(mib $(($(proc_kb "$WPID" VmHWM) * 1024))) MiB"
done
T_END=$(now)

# Stop the worker the way an operator does; it must exit 0 at once (idle).
kill -TERM "$WPID"
rc=0
for _ in $(seq 200); do
    kill -0 "$WPID" 2>/dev/null || break
    sleep 0.05
done
if kill -0 "$WPID" 2>/dev/null; then
    say "memory: worker still running 10 s after SIGTERM"
    FAIL=1
else
    wait "$WPID" || rc=$?
    [ "$rc" -eq 0 ] || { say "memory: worker exited $rc after SIGTERM"; FAIL=1; }
fi
BENCH_PIDS=()

FIRST=${MEMS[0]}
LAST=${MEMS[$((${#MEMS[@]} - 1))]}
RATIO=$(calc "$LAST / $FIRST")
echo
echo "used_memory after expiry: first round $(mib "$FIRST") MiB, last round $(mib "$LAST") MiB," \
    "ratio $(printf '%.3f' "$RATIO") (limit $MAX_GROWTH); before any job: $(mib "$BASE_MEM") MiB"
echo "event stream: longest $MAX_XLEN entries (cap ~$EVENTS_MAX); $((ROUNDS * PER)) jobs succeeded;" \
    "total time $(printf '%.0f' "$(calc "$T_END - $T_START")") s"
echo "Redis slowlog (emptied before each reading): $SLOW_TOTAL command(s) over 10 ms"
if awk -v r="$RATIO" -v m="$MAX_GROWTH" 'BEGIN { exit !(r > m) }'; then
    echo "FAIL: used_memory grew $(printf '%.3f' "$RATIO")x from the first round to the last (limit ${MAX_GROWTH}x)"
    FAIL=1
fi
if [ "$MAX_XLEN" -gt $((2 * EVENTS_MAX)) ]; then
    echo "FAIL: the event stream reached $MAX_XLEN entries, more than twice --events-max $EVENTS_MAX"
    FAIL=1
fi
if [ "$EXPIRY_INCOMPLETE" = 1 ]; then
    echo "note: in some round the job records were not all gone 30 s after their retention"
fi
if [ $FAIL = 0 ]; then
    echo "PASS: Redis memory stays flat"
    exit 0
fi
exit 1
