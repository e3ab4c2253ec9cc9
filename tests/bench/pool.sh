#!/usr/bin/env bash
# pool.sh — --isolation fork against --isolation pool (issue 11 item 5: pool
# should drain no-op jobs at least 3 times as fast as fork).
#
# Builds build-bench/ (release) when needed, starts a private redis-server on
# a unix socket (no RDB, no AOF), then, each --runs times, for fork and for
# pool in turn (interleaved, so drift on the machine hits both alike):
# pre-fills the queue with --jobs no-op jobs (one `lanework enqueue --batch`,
# the lanes of bench.sh), starts one `lanework-worker --burst` with the same
# flags but --isolation, and times it from start to exit. Every job must end
# succeeded (`lanework stats --json`) and the worker must exit 0, or the
# bench stops with exit 1. Prints every run, the medians and pool / fork.
#
# usage: tests/bench/pool.sh [--runs N] [--jobs N] [--concurrency N]
#          [--pool-max-jobs N] [--quick] [--keep]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

RUNS=3
JOBS=20000
CONC=16
POOL_MAX=
QUICK=0
RUNS_SET=0

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    cat <<'EOF'
options:
  --runs N            repetitions of each drain (default 3; --quick: 1)
  --jobs N            jobs per drain (default 20000; --quick: 3000)
  --concurrency N     --concurrency of both workers (default 16, as bench.sh's fork drains)
  --pool-max-jobs N   --pool-max-jobs of the pool worker (default: the worker's, 1000)
  --quick             smoke run: 3000 jobs, 1 run
  --keep              keep the temp dir (redis log, worker logs)
environment: BENCH_BUILD (default build-bench), TMPDIR
EOF
}

posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, not '$2'"; }

JOBS_SET=0
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) posint "$1" "${2:-}"; RUNS=$2; RUNS_SET=1; shift 2 ;;
    --jobs) posint "$1" "${2:-}"; JOBS=$2; JOBS_SET=1; shift 2 ;;
    --concurrency) posint "$1" "${2:-}"; CONC=$2; shift 2 ;;
    --pool-max-jobs) posint "$1" "${2:-}"; POOL_MAX=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --keep) BENCH_KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
if [ $QUICK = 1 ]; then
    [ $JOBS_SET = 1 ] || JOBS=3000
    [ $RUNS_SET = 1 ] || RUNS=1
fi

bench_build
bench_setup pool
JOBS_FILE=$BENCH_DIR/jobs-$JOBS.jsonl
make_jobs "$JOBS" "$JOBS_FILE"

declare -A S=()
add() { S[$1]="${S[$1]:-} $2"; }
# shellcheck disable=SC2086  # word splitting of the samples is the point
med() { median ${S[$1]:-}; }

# drain ISOLATION: pre-fill, one --burst worker, check, record jobs/s and
# the worker's CPU per job (its children included: the worker reaps them).
drain() {
    local iso=$1 deadline=$((60 + JOBS / 500)) log=$BENCH_DIR/worker-$1-$R.log
    local -a extra=() wrap=()
    [ "$iso" != pool ] || [ -z "$POOL_MAX" ] || extra=(--pool-max-jobs "$POOL_MAX")
    [ -z "$TIME_BIN" ] || wrap=("$TIME_BIN" -f '%U %S' -o "$BENCH_DIR/time-$iso-$R")
    rcli FLUSHALL >/dev/null
    enqueue_file "$JOBS_FILE"
    local t0 t1 rc=0 st secs rate u sy cpu=n/a
    t0=$(now)
    timeout -s KILL "$deadline" "${wrap[@]}" "$WORKER" --redis "$REDIS_URL" --registry "$REGISTRY" \
        --name "bench-$iso" --burst --isolation "$iso" --concurrency "$CONC" "${extra[@]}" >"$log" 2>&1 &
    BENCH_PIDS+=($!)
    wait $! || rc=$?
    t1=$(now)
    BENCH_PIDS=()
    if [ $rc -ne 0 ]; then
        tail -5 "$log" >&2 || true
        die "$iso worker exited $rc (137: killed after ${deadline}s)"
    fi
    st=$(tenant_stats)
    [ "$st" = "0 0 0 $JOBS 0 0 0" ] || die "$iso: expected all $JOBS jobs succeeded, stats say (q s a ok f c e): $st"
    secs=$(calc "$t1 - $t0")
    rate=$(calc "$JOBS / $secs")
    add "$iso" "$rate"
    if [ -n "$TIME_BIN" ]; then
        read -r u sy <"$BENCH_DIR/time-$iso-$R"
        cpu=$(calc "($u + $sy) / $JOBS * 1000000")
        add "cpu_$iso" "$cpu"
    fi
    say "$(printf '  run %s: %-4s %6d jobs in %6.2f s = %7.0f jobs/s  (worker + children %s us CPU/job)' \
        "$R" "$iso" "$JOBS" "$secs" "$rate" "$([ "$cpu" = n/a ] && echo n/a || printf '%.0f' "$cpu")")"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
say "lanework pool bench: $JOBS no-op jobs per drain, --concurrency $CONC, $RUNS run(s), temp dir $BENCH_DIR"
for R in $(seq "$RUNS"); do
    drain fork
    drain pool
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

runs_of() {
    local v out=
    for v in ${S[$1]:-}; do out="$out${out:+ }$(thousands "$v")"; done
    echo "$out"
}
cpu_of() { local m; m=$(med "cpu_$1"); [ "$m" = n/a ] && echo n/a || printf '%.0f us' "$m"; }
FORK=$(med fork)
POOL=$(med pool)
RATIO=$(calc "$POOL / $FORK")

echo
echo "lanework pool benchmark — medians of $RUNS run(s); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "host: $(nproc) CPU(s); load average at start: $LOAD_START, at end: $LOAD_END; build: $BENCH_BUILD ($BUILD_TYPE)"
echo "drain: $JOBS no-op jobs of testmod.so, one lanework-worker --burst --concurrency $CONC${POOL_MAX:+ (pool: --pool-max-jobs $POOL_MAX)}"
printf '  %-9s %10s  %-16s %s\n' isolation "jobs/s" "CPU/job" runs
printf '  %-9s %10s  %-16s %s\n' fork "$(thousands "$FORK")" "$(cpu_of fork)" "$(runs_of fork)"
printf '  %-9s %10s  %-16s %s\n' pool "$(thousands "$POOL")" "$(cpu_of pool)" "$(runs_of pool)"
printf '  pool / fork: %.2fx (target >= 3x)\n' "$RATIO"
