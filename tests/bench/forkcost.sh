#!/usr/bin/env bash
# forkcost.sh — where the worker CPU of one --isolation fork attempt goes:
# the worker's own share and its children's, page faults on each side, and
# the system calls per attempt (DESIGN.md section 10, "Fork drain").
#
# Builds build-bench/ (release) when needed, starts a private redis-server
# on a unix socket, then for each worker binary given (default: this
# build's), each --runs times, in turns: pre-fills --jobs no-op jobs and
# drains them with one `lanework-worker --burst --isolation fork`, once under
# `perf stat` (worker and children: task-clock, page-faults), once under
# `perf stat --no-inherit` (the worker alone), and once (--jobs / 5 jobs)
# under `strace -c -f`. Every drain must end with all jobs succeeded, or
# the script stops with exit 1. Prints per attempt: CPU (us) and page
# faults of the worker and of its children, and system calls, medians of
# the runs. Without perf (or strace) those columns say n/a.
#
# usage: tests/bench/forkcost.sh [--runs N] [--jobs N] [--concurrency N]
#          [--keep] [WORKER_BINARY...]
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

RUNS=3
JOBS=5000
CONC=16

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    cat <<'EOF'
options:
  --runs N            repetitions per binary (default 3)
  --jobs N            jobs per perf drain (default 5000; strace drains a fifth)
  --concurrency N     --concurrency of the worker (default 16)
  --keep              keep the temp dir (redis log, worker logs, raw outputs)
  WORKER_BINARY...    lanework-worker binaries to compare (default: the build's)
environment: BENCH_BUILD (default build-bench), TMPDIR
EOF
}

posint() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || die "$1 needs a positive integer, not '$2'"; }

declare -a BINS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) posint "$1" "${2:-}"; RUNS=$2; shift 2 ;;
    --jobs) posint "$1" "${2:-}"; JOBS=$2; shift 2 ;;
    --concurrency) posint "$1" "${2:-}"; CONC=$2; shift 2 ;;
    --keep) BENCH_KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [ -x "$1" ] || die "not an executable: $1"; BINS+=("$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"); shift ;;
    esac
done

bench_build
bench_setup forkcost
[ ${#BINS[@]} -gt 0 ] || BINS=("$WORKER")
HAVE_PERF=0
perf stat -e task-clock true >/dev/null 2>&1 && HAVE_PERF=1
HAVE_STRACE=0
command -v strace >/dev/null && HAVE_STRACE=1
STRACE_JOBS=$((JOBS / 5 > 0 ? JOBS / 5 : 1))

declare -A S=()
add() { S[$1]="${S[$1]:-} $2"; }
# shellcheck disable=SC2086  # word splitting of the samples is the point
med() { median ${S[$1]:-}; }

# drain BIN N OUT WRAP...: pre-fill N jobs, drain them with BIN under WRAP.
drain() {
    local bin=$1 n=$2 log=$BENCH_DIR/worker.log
    shift 2
    make_jobs "$n" "$BENCH_DIR/jobs.jsonl"
    rcli FLUSHALL >/dev/null
    enqueue_file "$BENCH_DIR/jobs.jsonl"
    timeout -s KILL $((60 + n / 200)) "$@" "$bin" --redis "$REDIS_URL" --registry "$REGISTRY" \
        --name forkcost --burst --isolation fork --concurrency "$CONC" >"$log" 2>&1 ||
        die "$bin exited $?: $(tail -3 "$log")"
    local st
    st=$(tenant_stats)
    [ "$st" = "0 0 0 $n 0 0 0" ] || die "expected all $n jobs succeeded, stats say (q s a ok f c e): $st"
}

# stat_of FILE EVENT: the count perf stat -x, wrote for EVENT.
stat_of() { awk -F, -v e="$2" '$3 ~ e { print $1; exit }' "$1"; }

say "lanework fork cost: $JOBS no-op jobs per drain, --concurrency $CONC, $RUNS run(s), temp dir $BENCH_DIR"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
for R in $(seq "$RUNS"); do
    for i in "${!BINS[@]}"; do
        b=${BINS[$i]}
        if [ $HAVE_PERF = 1 ]; then
            drain "$b" "$JOBS" perf stat -x, -e task-clock,page-faults -o "$BENCH_DIR/all-$i-$R"
            drain "$b" "$JOBS" perf stat --no-inherit -x, -e task-clock,page-faults -o "$BENCH_DIR/own-$i-$R"
            at=$(stat_of "$BENCH_DIR/all-$i-$R" task-clock) af=$(stat_of "$BENCH_DIR/all-$i-$R" page-faults)
            wt=$(stat_of "$BENCH_DIR/own-$i-$R" task-clock) wf=$(stat_of "$BENCH_DIR/own-$i-$R" page-faults)
            add "cpu_w_$i" "$(calc "$wt * 1000 / $JOBS")"
            add "cpu_c_$i" "$(calc "($at - $wt) * 1000 / $JOBS")"
            add "cpu_a_$i" "$(calc "$at * 1000 / $JOBS")"
            add "pf_w_$i" "$(calc "$wf / $JOBS")"
            add "pf_c_$i" "$(calc "($af - $wf) / $JOBS")"
        fi
        if [ $HAVE_STRACE = 1 ]; then
            drain "$b" "$STRACE_JOBS" strace -c -f -o "$BENCH_DIR/strace-$i-$R"
            add "sys_$i" "$(awk -v n="$STRACE_JOBS" '$NF == "total" { printf "%.6f\n", $4 / n }' \
                "$BENCH_DIR/strace-$i-$R")"
        fi
        say "  run $R: ${BINS[$i]} done"
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

f1() { local m; m=$(med "$1"); [ "$m" = n/a ] && echo n/a || printf '%.1f' "$m"; }
f0() { local m; m=$(med "$1"); [ "$m" = n/a ] && echo n/a || printf '%.0f' "$m"; }
echo
echo "lanework fork cost per attempt — medians of $RUNS run(s); $(date -u +%Y-%m-%dT%H:%MZ)"
echo "host: $(nproc) CPU(s); load average at start: $LOAD_START, at end: $LOAD_END"
echo "drain: $JOBS no-op jobs (strace: $STRACE_JOBS), one lanework-worker --burst --isolation fork --concurrency $CONC"
printf '  %-10s %8s %8s %8s %10s %10s %10s  %s\n' binary "CPU us" worker children "faults w" "faults c" syscalls path
for i in "${!BINS[@]}"; do
    printf '  %-10s %8s %8s %8s %10s %10s %10s  %s\n' "#$((i + 1))" "$(f0 "cpu_a_$i")" "$(f0 "cpu_w_$i")" \
        "$(f0 "cpu_c_$i")" "$(f1 "pf_w_$i")" "$(f1 "pf_c_$i")" "$(f1 "sys_$i")" "${BINS[$i]}"
done
