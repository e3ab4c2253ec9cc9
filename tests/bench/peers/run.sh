#!/usr/bin/env bash
# run.sh — lanework side by side with BullMQ, Sidekiq and RQ, on one Redis.
#
# Builds build-bench/ (release) when needed and starts one private
# redis-server on a unix socket in a temp dir (tests/bench/lib.sh); every
# system uses that socket. Then, --reps times, interleaved (rep 1: every
# system, rep 2: every system, ...), peers.py measures:
#   1. drains of N pre-enqueued no-op jobs: lanework thread isolation c128 and
#      c8 with 1 and 2 worker processes, fork isolation 1 process; BullMQ
#      (concurrency 50, completed jobs kept / removeOnComplete) 1 and 2 node
#      processes; Sidekiq (-c 10, logger at WARN) 1 and 2 processes; RQ
#      SimpleWorker and forking Worker (--burst), 1 process. Each must have
#      processed exactly N jobs by the system's own count; lanework's
#      `lanework stats` and `lanework fsck` must be clean after each drain;
#   2. per drain: jobs/s, Redis CPU per job, worker CPU per job, peak RSS;
#   3. the bulk enqueue that pre-filled each drain: `lanework enqueue --batch`,
#      Sidekiq push_bulk, BullMQ addBulk, RQ enqueue_many (1,000 per call);
#   4. start latency of single enqueues at --rate/s for --seconds into one
#      running worker: lanework thread and fork (tests/bench/latency.py),
#      BullMQ c50, Sidekiq -c 10;
#   5. lane hand-over: a lanework drain over 10 shared lanes at c128.
# Prints the medians and the ratio of lanework to the best peer (markdown
# tables) and writes every sample as JSON (--out). A peer that is not
# installed is skipped with a line saying so (scripts/install-deps.sh
# --bench installs them). See tests/bench/README.md, "peers/".
#
# usage: tests/bench/peers/run.sh [--quick] [--reps N] [--jobs N]
#          [--rate N] [--seconds S] [--only lanework,bullmq,sidekiq,rq]
#          [--out FILE] [--keep]
set -euo pipefail

# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    cat <<'EOF2'
options:
  --reps N        repetitions, interleaved (default 3; --quick: 1)
  --jobs N        jobs per drain (default 100000; --quick: 5000); fork drains
                  N/10, RQ SimpleWorker N/100, RQ fork N/500, 10 lanes N/4
  --rate N        single enqueues per second of the latency step (default 2000)
  --seconds S     length of each latency measurement (default 5; --quick: 1)
  --only LIST     systems to run, comma-separated (default all four)
  --out FILE      raw samples as JSON (default $TMPDIR/lanework-peers.json)
  --quick         smoke run: 5000 jobs, 1 rep, 1 s of latency
  --keep          keep the temp dir (Redis and worker logs)
environment: BENCH_BUILD (default build-bench), TMPDIR
EOF2
}

args=()
OUT=${TMPDIR:-/tmp}/lanework-peers.json
while [ $# -gt 0 ]; do
    case "$1" in
    --reps | --jobs | --rate | --seconds | --only)
        [ $# -ge 2 ] || { usage >&2; exit 2; }
        args+=("$1" "$2"); shift 2 ;;
    --out) [ $# -ge 2 ] || { usage >&2; exit 2; }; OUT=$2; shift 2 ;;
    --quick) args+=(--quick); shift ;;
    --keep) BENCH_KEEP=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
done
case "$OUT" in /*) ;; *) OUT=$PWD/$OUT ;; esac

bench_build
bench_setup peers
machine="$(uname -sr), $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || echo 'cpu n/a')"
# Foreground, so Ctrl-C reaches it: it stops what it started, then
# bench_cleanup (the EXIT trap) stops Redis and removes the temp dir.
rc=0
python3 "$(dirname "$0")/peers.py" --socket "$REDIS_SOCK" --dir "$BENCH_DIR" --build "$BENCH_BUILD" \
    --out "$OUT" --machine "$machine" "${args[@]}" || rc=$?
exit $rc
