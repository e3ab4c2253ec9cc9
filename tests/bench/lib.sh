# shellcheck shell=bash
# shellcheck disable=SC2034  # globals set here are read by the sourcing scripts
# lib.sh — helpers shared by bench.sh and memory.sh (sourced, not run).
#
# Everything here works on a private world: one temp dir ($BENCH_DIR) holding
# a redis-server on a unix socket (no persistence), a registry with one tenant
# ("bench") that uses the test module, worker logs and job files. cleanup()
# stops only the processes this script started, by pid.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH_BUILD=${BENCH_BUILD:-$BENCH_ROOT/build-bench}
# Absolute: the scripts run the binaries from inside $BENCH_DIR.
case "$BENCH_BUILD" in /*) ;; *) BENCH_BUILD=$PWD/$BENCH_BUILD ;; esac
BENCH_TENANT=bench
BENCH_KEEP=0 # set by --keep in the scripts
export BENCH_KEEP
BENCH_DIR=
REDIS_PID=
REDIS_SOCK=
REDIS_URL=
declare -a BENCH_PIDS=()

say() { printf '%s\n' "$*" >&2; }
die() {
    say "bench: $*"
    exit 1
}

# now: wall clock in seconds with microseconds.
now() { printf '%s\n' "$EPOCHREALTIME"; }

# calc EXPR: floating-point arithmetic (awk), e.g. calc "3 / 2".
calc() { awk "BEGIN { printf \"%.6f\n\", $1 }"; }

# median V...: the median of numbers ("n/a" when none).
median() {
    if [ $# -eq 0 ]; then
        echo n/a
        return
    fi
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# thousands N: 1234567.8 -> 1,234,568
thousands() {
    awk -v n="$1" 'BEGIN {
        if (n == "n/a" || n == "") { print "n/a"; exit }
        s = sprintf("%.0f", n); out = ""
        while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
        print s out }'
}

# GNU time, for the CPU and peak RSS of the processes we start.
TIME_BIN=
if [ -x /usr/bin/time ] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then TIME_BIN=/usr/bin/time; fi

# build: configure build-bench as a release build when absent, then ninja.
# BENCH_NO_BUILD=1 uses $BENCH_BUILD as it is (a meson test, whose build
# meson has just brought up to date).
bench_build() {
    local log
    log=$(mktemp "${TMPDIR:-/tmp}/lanework-bench-build-XXXXXX")
    if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
        if [ ! -f "$BENCH_BUILD/build.ninja" ]; then
            say "building: meson setup $BENCH_BUILD --buildtype=release"
            meson setup "$BENCH_BUILD" "$BENCH_ROOT" --buildtype=release >"$log" 2>&1 ||
                die "meson setup failed; see $log"
        fi
        ninja -C "$BENCH_BUILD" >>"$log" 2>&1 || die "ninja failed; see $log"
    fi
    rm -f "$log"
    CLI=$BENCH_BUILD/enqueue-cli/lanework
    WORKER=$BENCH_BUILD/worker/lanework-worker
    TESTMOD=$BENCH_BUILD/tests/modules/testmod.so
    for f in "$CLI" "$WORKER" "$TESTMOD"; do
        [ -x "$f" ] || [ -f "$f" ] || die "missing after build: $f"
    done
    BUILD_TYPE=$(python3 -c 'import json,sys
for o in json.load(open(sys.argv[1])):
    if o["name"] == "buildtype": print(o["value"])' "$BENCH_BUILD/meson-info/intro-buildoptions.json" 2>/dev/null || echo unknown)
    [ "$BUILD_TYPE" = release ] || say "bench: warning: $BENCH_BUILD is a '$BUILD_TYPE' build, not release"
}

# bench_setup NAME: temp dir, redis-server on a unix socket, registry.
bench_setup() {
    command -v redis-server >/dev/null || die "redis-server not found"
    command -v redis-cli >/dev/null || die "redis-cli not found"
    BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/lanework-$1-XXXXXX")
    trap bench_cleanup EXIT
    trap 'say "bench: interrupted"; exit 130' INT TERM
    REDIS_SOCK=$BENCH_DIR/redis.sock
    REDIS_URL=unix://$REDIS_SOCK
    redis-server --port 0 --unixsocket "$REDIS_SOCK" --unixsocketperm 700 --dir "$BENCH_DIR" \
        --save '' --appendonly no --maxmemory-policy noeviction \
        --logfile "$BENCH_DIR/redis.log" >/dev/null 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 100); do
        [ "$(rcli PING 2>/dev/null)" = PONG ] && break
        kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server did not start; see $BENCH_DIR/redis.log"
        sleep 0.05
    done
    [ "$(rcli PING 2>/dev/null)" = PONG ] || die "redis-server did not answer on $REDIS_SOCK"
    REGISTRY=$BENCH_DIR/registry.json
    cat >"$REGISTRY" <<EOF
[{"tenant": "$BENCH_TENANT", "module": "$TESTMOD",
  "defaults": {"attempts": 3, "timeout": 60, "backoff": 0.1}}]
EOF
}

bench_cleanup() {
    # Workers run under `timeout`, which leads its own process group: TERM
    # to that group first (a worker drains and hands back), then KILL.
    local p left=0
    for p in "${BENCH_PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
            left=1
        fi
    done
    if [ $left = 1 ]; then
        sleep 0.5
        for p in "${BENCH_PIDS[@]}"; do
            kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
        done
    fi
    if [ -n "$REDIS_PID" ] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    if [ -n "$BENCH_DIR" ]; then
        if [ "$BENCH_KEEP" = 1 ]; then
            say "bench: kept $BENCH_DIR"
        else
            rm -rf "$BENCH_DIR"
        fi
    fi
}

# rcli ARGS...: one command to the private Redis.
rcli() { redis-cli -s "$REDIS_SOCK" "$@"; }

# rinfo FIELD [SECTION]: one field of INFO.
rinfo() { rcli INFO "${2:-all}" | tr -d '\r' | awk -F: -v f="$1" '$1 == f { print $2 }'; }

# redis_cpu: seconds of CPU redis-server has used (user + sys).
redis_cpu() {
    rcli INFO cpu | tr -d '\r' | awk -F: '$1 == "used_cpu_user" || $1 == "used_cpu_sys" { s += $2 } END { printf "%.6f\n", s }'
}

# lw ARGS...: the CLI against the private Redis and registry.
lw() { "$CLI" --redis "$REDIS_URL" --registry "$REGISTRY" "$@"; }

# tenant_stats: "queued scheduled active succeeded failed cancelled expired"
# summed over the bench tenant's queues, from `lanework stats --json`.
tenant_stats() {
    lw stats --tenant "$BENCH_TENANT" --json | python3 -c '
import json, sys
keys = ("queued", "scheduled", "active", "succeeded", "failed", "cancelled", "expired")
d = json.load(sys.stdin)
qs = d.get("tenants", {}).get(sys.argv[1], {}).get("queues", {})
print(*[sum(int(q.get(k, 0)) for q in qs.values()) for k in keys])' "$BENCH_TENANT"
}

# make_jobs N FILE: N no-op jobs, one JSON object per line. 9 in 10 get
# their own lane (the default, the job id); 1 in 10 shares one of N/200
# lanes (20 jobs each, spread over the whole file), so lane hand-over is
# part of what is measured.
make_jobs() {
    local n=$1 file=$2
    local lanes=$((n / 200))
    [ "$lanes" -ge 1 ] || lanes=1
    awk -v n="$n" -v lanes="$lanes" 'BEGIN {
        for (i = 0; i < n; i++) {
            if (i % 10 == 0)
                printf "{\"kind\":\"noop\",\"lane\":\"shared-%d\",\"payload\":{\"i\":%d}}\n", int(i / 10) % lanes, i
            else
                printf "{\"kind\":\"noop\",\"payload\":{\"i\":%d}}\n", i
        } }' >"$file"
}

# enqueue_file FILE [EXTRA CLI FLAGS...]: one `lanework enqueue --batch`,
# checks it printed one id per line. Sets ENQ_S (wall seconds) and ENQ_CPU
# (the CLI's user + sys seconds, or "" without GNU time).
enqueue_file() {
    local file=$1
    shift
    local n t0 t1 got u sy
    local -a wrap=()
    n=$(wc -l <"$file")
    [ -z "${TIME_BIN:-}" ] || wrap=("$TIME_BIN" -f '%U %S' -o "$BENCH_DIR/enqueue.time")
    t0=$(now)
    "${wrap[@]}" "$CLI" --redis "$REDIS_URL" --registry "$REGISTRY" "$@" \
        enqueue --batch "$file" --tenant "$BENCH_TENANT" >"$BENCH_DIR/ids.out" 2>"$BENCH_DIR/enqueue.err" ||
        die "lanework enqueue --batch failed: $(tail -3 "$BENCH_DIR/enqueue.err")"
    t1=$(now)
    got=$(wc -l <"$BENCH_DIR/ids.out")
    [ "$got" -eq "$n" ] || die "enqueue --batch printed $got ids for $n jobs"
    ENQ_S=$(calc "$t1 - $t0")
    ENQ_CPU=
    if [ -n "${TIME_BIN:-}" ]; then
        read -r u sy <"$BENCH_DIR/enqueue.time"
        ENQ_CPU=$(calc "$u + $sy")
    fi
}
