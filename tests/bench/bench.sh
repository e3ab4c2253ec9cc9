#!/usr/bin/env bash
# bench.sh — lanework's throughput benchmark, in one go.
#
# Builds build-bench/ (release) when needed, starts a private redis-server on
# a unix socket (no RDB, no AOF), then measures, each --runs times:
#   1. the Redis ceiling: redis-benchmark SET/LPUSH/LPOP on the same socket,
#      without and with pipelining (-P 16), and an EVAL doing 20 redis.call
#      (what one Lua script call with 20 commands costs);
#   2. enqueue: one `lanework enqueue --batch FILE` of --jobs no-op jobs;
#   3. drain: with the queue pre-filled, 1 and 2 `lanework-worker --burst`
#      with thread and with fork isolation, from start to the last exit;
#      every job must end succeeded (checked with `lanework stats --json`);
#      the peak RSS of each worker is taken from /usr/bin/time;
#   4. once, the Redis CPU per job of enqueue.lua, claim.lua and finish.lua,
#      driven directly by scriptcost.py (where the drain's Redis time goes);
#   5. last, start latency (latency.py): single enqueues at a fixed rate
#      (--latency-rate, 1000 jobs/s) for --latency-seconds (5; --quick: 1)
#      into one running worker, fork and thread, p50/p90/p99/max.
# Prints medians. See tests/bench/README.md for what each number means.
#
# usage: tests/bench/bench.sh [--runs N] [--jobs N] [--fork-jobs N]
#          [--thread-concurrency N] [--fork-concurrency N]
#          [--latency-rate N] [--latency-seconds N] [--quick] [--keep]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

RUNS=3
JOBS=200000
FORK_JOBS=
THREAD_CONC=8
FORK_CONC=16
RB_N=200000
LAT_RATE=1000
LAT_SECONDS=
QUICK=0
RUNS_SET=0

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    cat <<'EOF'
options:
  --runs N                 repetitions of every measurement (default 3; --quick: 1)
  --jobs N                 jobs per enqueue and per thread drain (default 200000)
  --fork-jobs N            jobs per fork drain (default: --jobs / 10)
  --thread-concurrency N   --concurrency of thread-isolation workers (default 8)
  --fork-concurrency N     --concurrency of fork-isolation workers (default 16)
  --latency-rate N         enqueues/s of the latency step (default 1000)
  --latency-seconds N      length of each latency measurement (default 5; --quick: 1)
  --quick                  smoke run: 10000 jobs, 2500 fork jobs, 1 run
  --keep                   keep the temp dir (redis log, worker logs)
environment: BENCH_BUILD (default build-bench), TMPDIR
EOF
}

posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, not '$2'"; }

while [ $# -gt 0 ]; do
    case "$1" in
    --runs) posint "$1" "${2:-}"; RUNS=$2; RUNS_SET=1; shift 2 ;;
    --jobs) posint "$1" "${2:-}"; JOBS=$2; shift 2 ;;
    --fork-jobs) posint "$1" "${2:-}"; FORK_JOBS=$2; shift 2 ;;
    --thread-concurrency) posint "$1" "${2:-}"; THREAD_CONC=$2; shift 2 ;;
    --fork-concurrency) posint "$1" "${2:-}"; FORK_CONC=$2; shift 2 ;;
    --latency-rate) posint "$1" "${2:-}"; LAT_RATE=$2; shift 2 ;;
    --latency-seconds) posint "$1" "${2:-}"; LAT_SECONDS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --keep) BENCH_KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
if [ $QUICK = 1 ]; then
    JOBS=10000
    FORK_JOBS=${FORK_JOBS:-2500}
    RB_N=20000
    LAT_SECONDS=${LAT_SECONDS:-1}
    [ $RUNS_SET = 1 ] || RUNS=1
fi
LAT_SECONDS=${LAT_SECONDS:-5}
[ -n "$FORK_JOBS" ] || FORK_JOBS=$(((JOBS + 9) / 10))

command -v redis-benchmark >/dev/null || die "redis-benchmark not found"
[ -n "$TIME_BIN" ] || say "bench: /usr/bin/time (GNU) not found: worker RSS not measured"

bench_build
bench_setup bench

# Samples, keyed by measurement: space-separated values, one per run.
declare -A S=()
add() { S[$1]="${S[$1]:-} $2"; }
# shellcheck disable=SC2086
med() { median ${S[$1]:-}; }

# ------------------------------------------------------------ Redis ceiling --

# rb ARGS...: one redis-benchmark run; prints requests/s of each test, in order.
rb() {
    redis-benchmark -s "$REDIS_SOCK" -q "$@" 2>/dev/null | tr '\r' '\n' |
        awk '/requests per second/ { for (i = 2; i <= NF; i++) if ($i == "requests") print $(i - 1) }'
}

redis_ceiling() {
    local r=$1 P v k
    for P in 1 16; do
        local -a vals
        mapfile -t vals < <(rb -t set,lpush,lpop -n "$RB_N" -P "$P")
        [ ${#vals[@]} -eq 3 ] || die "redis-benchmark -P $P printed ${#vals[@]} results, not 3"
        k=0
        for v in SET LPUSH LPOP; do
            add "rb_${v}_P$P" "${vals[$k]}"
            k=$((k + 1))
        done
        say "  run $r: redis-benchmark -P $P: SET ${vals[0]}  LPUSH ${vals[1]}  LPOP ${vals[2]} ops/s"
    done
    # One script doing 20 redis.call: a drained lanework job costs about this
    # many commands inside claim.lua + finish.lua.
    v=$(rb -n $((RB_N / 10)) EVAL "for i = 1, 20 do redis.call('INCR', KEYS[1]) end return 1" 1 bench:lua | head -1)
    [ -n "$v" ] || die "redis-benchmark EVAL printed nothing"
    add rb_EVAL20 "$v"
    say "  run $r: redis-benchmark EVAL (20 redis.call each): $v scripts/s"
    rcli FLUSHALL >/dev/null
}

# ------------------------------------------------------------------ lanework --

JOBS_FILE=$BENCH_DIR/jobs-$JOBS.jsonl
FORK_FILE=$BENCH_DIR/jobs-$FORK_JOBS.jsonl
make_jobs "$JOBS" "$JOBS_FILE"
[ "$FORK_JOBS" = "$JOBS" ] || make_jobs "$FORK_JOBS" "$FORK_FILE"
[ "$FORK_JOBS" != "$JOBS" ] || FORK_FILE=$JOBS_FILE

# prefill FILE: empty Redis, then one timed `enqueue --batch`; checks every
# job is queued. Sets PREFILL_S (seconds) and PREFILL_CPU (Redis CPU s).
prefill() {
    local file=$1 n c0 st
    n=$(wc -l <"$file")
    rcli FLUSHALL >/dev/null
    c0=$(redis_cpu)
    enqueue_file "$file"
    PREFILL_S=$ENQ_S
    PREFILL_CLI=$ENQ_CPU
    PREFILL_CPU=$(calc "$(redis_cpu) - $c0")
    st=$(tenant_stats)
    [ "$(echo "$st" | awk '{ print $1 }')" -eq "$n" ] || die "after enqueue of $n jobs, stats say: $st"
}

# drain KEY ISOLATION CONCURRENCY WORKERS JOBS: starts the workers on the
# pre-filled queue, waits for all to exit, checks the outcome; records jobs/s,
# Redis CPU per job and the workers' peak RSS under KEY.
drain() {
    local key=$1 iso=$2 conc=$3 nw=$4 n=$5
    local deadline=$((60 + n / 500))
    local -a pids=()
    local i c0 t0 t1 c1 rc bad=0 st rss=0 wcpu=0 r u sy secs rate
    c0=$(redis_cpu)
    t0=$(now)
    for i in $(seq "$nw"); do
        local log=$BENCH_DIR/worker-$key-$i.log
        if [ -n "$TIME_BIN" ]; then
            timeout -s KILL "$deadline" "$TIME_BIN" -f '%M %U %S' -o "$BENCH_DIR/rss-$key-$i" \
                "$WORKER" --redis "$REDIS_URL" --registry "$REGISTRY" --name "bench-$key-$i" \
                --burst --isolation "$iso" --concurrency "$conc" >"$log" 2>&1 &
        else
            timeout -s KILL "$deadline" \
                "$WORKER" --redis "$REDIS_URL" --registry "$REGISTRY" --name "bench-$key-$i" \
                --burst --isolation "$iso" --concurrency "$conc" >"$log" 2>&1 &
        fi
        pids+=($!)
        BENCH_PIDS+=($!)
    done
    for i in "${!pids[@]}"; do
        rc=0
        wait "${pids[$i]}" || rc=$?
        if [ $rc -ne 0 ]; then
            say "bench: worker $((i + 1)) of $key exited $rc (137: killed after ${deadline}s); log tail:"
            tail -5 "$BENCH_DIR/worker-$key-$((i + 1)).log" >&2 || true
            bad=1
        fi
    done
    t1=$(now)
    c1=$(redis_cpu)
    BENCH_PIDS=()
    [ $bad = 0 ] || die "$key: a worker failed"
    st=$(tenant_stats)
    # queued scheduled active succeeded failed cancelled expired
    [ "$st" = "0 0 0 $n 0 0 0" ] || die "$key: expected all $n jobs succeeded, stats say (q s a ok f c e): $st"
    if [ -n "$TIME_BIN" ]; then
        for i in $(seq "$nw"); do
            read -r r u sy < <(tail -1 "$BENCH_DIR/rss-$key-$i")
            if [ "$r" -gt "$rss" ]; then rss=$r; fi
            wcpu=$(calc "$wcpu + $u + $sy")
        done
    fi
    secs=$(calc "$t1 - $t0")
    rate=$(calc "$n / $secs")
    add "drain_$key" "$rate"
    add "cpu_$key" "$(calc "($c1 - $c0) / $n * 1000000")"
    add "busy_$key" "$(calc "($c1 - $c0) / $secs * 100")"
    if [ -n "$TIME_BIN" ]; then
        add "rss_$key" "$(calc "$rss / 1024")"
        add "wcpu_$key" "$(calc "$wcpu / $n * 1000000")"
    fi
    say "$(printf '  run %s: drain %-10s %7d jobs in %6.2f s = %8.0f jobs/s  (redis %3.0f%% busy, %5.1f us/job; workers %5.1f us/job, peak RSS %s)' \
        "$R" "$key" "$n" "$secs" "$rate" "$(calc "($c1 - $c0) / $secs * 100")" \
        "$(calc "($c1 - $c0) / $n * 1000000")" "$(calc "$wcpu / $n * 1000000")" \
        "$([ -n "$TIME_BIN" ] && calc "$rss / 1024" | awk '{ printf "%.2f MiB", $1 }' || echo n/a)")"
}

record_enqueue() {
    local n=$1 rate
    rate=$(calc "$n / $PREFILL_S")
    add enqueue "$rate"
    add cpu_enqueue "$(calc "$PREFILL_CPU / $n * 1000000")"
    add busy_enqueue "$(calc "$PREFILL_CPU / $PREFILL_S * 100")"
    [ -z "$PREFILL_CLI" ] || add wcpu_enqueue "$(calc "$PREFILL_CLI / $n * 1000000")"
    say "$(printf '  run %s: enqueue --batch    %7d jobs in %6.2f s = %8.0f jobs/s  (redis %3.0f%% busy, %5.1f us/job; CLI %s us/job)' \
        "$R" "$n" "$PREFILL_S" "$rate" "$(calc "$PREFILL_CPU / $PREFILL_S * 100")" "$(calc "$PREFILL_CPU / $n * 1000000")" \
        "$([ -n "$PREFILL_CLI" ] && calc "$PREFILL_CLI / $n * 1000000" | awk '{ printf "%.1f", $1 }' || echo n/a)")"
}

T_START=$(now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "lanework bench: $JOBS jobs (fork drains: $FORK_JOBS), $RUNS run(s), temp dir $BENCH_DIR"
for R in $(seq "$RUNS"); do
    redis_ceiling "$R"
    # The two thread prefills are the enqueue measurement.
    prefill "$JOBS_FILE"
    record_enqueue "$JOBS"
    drain thread-1w thread "$THREAD_CONC" 1 "$JOBS"
    prefill "$JOBS_FILE"
    record_enqueue "$JOBS"
    drain thread-2w thread "$THREAD_CONC" 2 "$JOBS"
    prefill "$FORK_FILE"
    drain fork-1w fork "$FORK_CONC" 1 "$FORK_JOBS"
    prefill "$FORK_FILE"
    drain fork-2w fork "$FORK_CONC" 2 "$FORK_JOBS"
done
# Where Redis's time goes: each Lua script driven directly, per job.
SC_JOBS=$((JOBS < 20000 ? JOBS : 20000))
say "  script cost: enqueue/claim/finish.lua driven directly with $SC_JOBS jobs"
SCRIPT_COST=$(python3 "$(dirname "$0")/scriptcost.py" --socket "$REDIS_SOCK" --jobs "$SC_JOBS") ||
    die "scriptcost.py failed"
# Start latency at a fixed rate of single enqueues, on the same Redis and
# build (latency.py starts and stops its own workers).
say "  latency: $LAT_RATE single enqueues/s for $LAT_SECONDS s into one worker, fork and thread, $RUNS run(s)"
LAT_ARGS=(--socket "$REDIS_SOCK" --build "$BENCH_BUILD" --no-build --rate "$LAT_RATE"
    --seconds "$LAT_SECONDS" --runs "$RUNS")
[ "$BENCH_KEEP" != 1 ] || LAT_ARGS+=(--keep)
LAT_RC=0
LATENCY=$(timeout -s TERM $((120 + RUNS * 2 * (LAT_SECONDS + 40))) \
    python3 "$(dirname "$0")/latency.py" "${LAT_ARGS[@]}") || LAT_RC=$?
if [ $LAT_RC != 0 ]; then
    [ -z "$LATENCY" ] || printf '%s\n' "$LATENCY" >&2
    die "latency.py failed (exit $LAT_RC; 124: killed after its time bound)"
fi
T_END=$(now)
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# -------------------------------------------------------------------- report --

n0() { thousands "$(med "$1")"; }
f1() { local m; m=$(med "$1"); [ "$m" = n/a ] && echo n/a || printf '%.1f' "$m"; }
f2() { local m; m=$(med "$1"); [ "$m" = n/a ] && echo n/a || printf '%.2f' "$m"; }
runs_of() {
    local v out=
    for v in ${S[$1]:-}; do out="$out${out:+ }$(thousands "$v")"; done
    echo "$out"
}

RSS_MAX=n/a
if [ -n "$TIME_BIN" ]; then
    RSS_MAX=$(printf '%s\n' "$(med rss_thread-1w)" "$(med rss_thread-2w)" "$(med rss_fork-1w)" "$(med rss_fork-2w)" | sort -g | tail -1)
fi
RSS_VERDICT=
if [ "$RSS_MAX" != n/a ]; then
    RSS_VERDICT=$(awk -v r="$RSS_MAX" 'BEGIN { print (r <= 5 ? "ok, target <= 5 MiB" : "OVER the 5 MiB target") }')
fi

echo
echo "lanework benchmark — medians of $RUNS run(s); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "host: $(nproc) CPU(s), $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo); load average at start: $LOAD_START, at end: $LOAD_END"
echo "redis: $(redis-server --version | awk '{ print $3 }' | sed 's/v=//'), unix socket, --save '' --appendonly no; build: $BENCH_BUILD ($BUILD_TYPE)"
echo "jobs: $JOBS per enqueue / thread drain, $FORK_JOBS per fork drain; no-op kind of testmod.so;"
echo "      9 in 10 jobs on their own lane, 1 in 10 on one of $((JOBS / 200 > 0 ? JOBS / 200 : 1)) shared lanes"
echo "workers: --burst; thread: --isolation thread --concurrency $THREAD_CONC; fork: --isolation fork --concurrency $FORK_CONC"
echo
echo "Redis ceiling (redis-benchmark -s SOCK, 50 clients, -n $RB_N), ops/s:"
printf '  %-22s %12s %12s %12s\n' "" SET LPUSH LPOP
printf '  %-22s %12s %12s %12s\n' "no pipelining" "$(n0 rb_SET_P1)" "$(n0 rb_LPUSH_P1)" "$(n0 rb_LPOP_P1)"
printf '  %-22s %12s %12s %12s\n' "-P 16" "$(n0 rb_SET_P16)" "$(n0 rb_LPUSH_P16)" "$(n0 rb_LPOP_P16)"
printf '  EVAL with 20 redis.call: %s scripts/s = %s commands/s inside Lua\n' \
    "$(n0 rb_EVAL20)" "$(thousands "$(calc "$(med rb_EVAL20) * 20")")"
echo
echo "lanework (jobs/s; per row: median, then every run):"
printf '  %-20s %10s  %-14s %-11s %-15s %s\n' measurement median "redis CPU/job" "redis busy" "client CPU/job" runs
for k in enqueue thread-1w thread-2w fork-1w fork-2w; do
    key=drain_$k
    [ $k = enqueue ] && key=enqueue
    label=$k
    [ $k = enqueue ] && label="enqueue --batch"
    [ $k = enqueue ] || label="drain $k"
    w=$(f1 "wcpu_$k")
    [ "$w" = n/a ] || w="$w us"
    printf '  %-20s %10s  %8s us    %5s %%     %-15s %s\n' "$label" "$(n0 "$key")" "$(f1 "cpu_$k")" "$(f1 "busy_$k")" "$w" "$(runs_of "$key")"
done
if [ -n "$TIME_BIN" ]; then
    printf '  worker peak RSS (MiB, largest worker of the run): thread 1w %s, 2w %s; fork 1w %s, 2w %s\n' \
        "$(f2 rss_thread-1w)" "$(f2 rss_thread-2w)" "$(f2 rss_fork-1w)" "$(f2 rss_fork-2w)"
fi
echo
echo "$SCRIPT_COST"
echo
echo "$LATENCY"
echo
echo "| redis-benchmark SET ops/s | enqueue --batch jobs/s | drain thread 1w | thread 2w | fork 1w | fork 2w | worker RSS |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
printf '| %s (-P 16: %s) | %s | %s | %s | %s | %s | %s |\n' "$(n0 rb_SET_P1)" "$(n0 rb_SET_P16)" "$(n0 enqueue)" \
    "$(n0 drain_thread-1w)" "$(n0 drain_thread-2w)" "$(n0 drain_fork-1w)" "$(n0 drain_fork-2w)" \
    "$([ "$RSS_MAX" = n/a ] && echo n/a || printf '%.2f MiB' "$RSS_MAX")"
echo
echo "worker RSS: ${RSS_VERDICT:-not measured}; all drained jobs succeeded; total time $(printf '%.0f' "$(calc "$T_END - $T_START")") s"
