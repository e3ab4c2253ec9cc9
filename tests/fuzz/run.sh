#!/usr/bin/env bash
# tests/fuzz/run.sh — fuzz every parser harness for a bounded time.
#
#   tests/fuzz/run.sh [--time S] [--engine auto|afl|libfuzzer] [--max-len N]
#                     [--out DIR] [--no-install] [--minimize] [NAME...]
#
# NAME: url, registry, jobspec, spool (default: all four), run one after the
# other, never in parallel. Each gets S seconds (default 60) of fuzzing,
# started from its saved corpus (tests/fuzz/corpus/NAME) with sanitizers
# (ASan + UBSan) on.
#
# Engines: AFL++ (afl-clang-fast, Debian package afl++) is preferred; when it
# is missing and we are root, it is installed with apt-get (unless
# --no-install). Otherwise clang's libFuzzer (-fsanitize=fuzzer). Both take
# the same harnesses (LLVMFuzzerTestOneInput).
#
# Everything is built and written under --out (default build-fuzz/ at the
# top of the tree): objects, the engine's working directories, and with
# --minimize a minimized corpus per harness (min/NAME) to pick new seeds
# from. Crashing inputs are copied to tests/fuzz/findings/NAME/ (not kept in
# git) and replayed once to show what went wrong.
#
# Exit status: 0 when no harness crashed or hung, 1 when one did, 2 for a
# usage or build error. The script stops by itself: every engine run is
# bounded by its time and, as a safety net, by timeout(1).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

time_s=60
engine=auto
max_len=16384
out="$root/build-fuzz"
install=1
minimize=0
names=()
all_names=(url registry jobspec spool)

usage() {
    sed -n '3,5p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case "$1" in
    --time) time_s=${2:?}; shift 2 ;;
    --time=*) time_s=${1#*=}; shift ;;
    --engine) engine=${2:?}; shift 2 ;;
    --engine=*) engine=${1#*=}; shift ;;
    --max-len) max_len=${2:?}; shift 2 ;;
    --max-len=*) max_len=${1#*=}; shift ;;
    --out) out=${2:?}; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --no-install) install=0; shift ;;
    --minimize) minimize=1; shift ;;
    -h|--help) usage ;;
    -*) echo "run.sh: unknown option $1" >&2; usage ;;
    *) names+=("$1"); shift ;;
    esac
done
case "$time_s" in ''|*[!0-9]*) echo "run.sh: --time wants whole seconds" >&2; exit 2 ;; esac
case "$max_len" in ''|*[!0-9]*) echo "run.sh: --max-len wants a number of bytes" >&2; exit 2 ;; esac
[ "$time_s" -ge 1 ] || { echo "run.sh: --time must be at least 1" >&2; exit 2; }
[ ${#names[@]} -gt 0 ] || names=("${all_names[@]}")
for n in "${names[@]}"; do
    [ -f "$here/fuzz_$n.c" ] || { echo "run.sh: no harness named $n (known: ${all_names[*]})" >&2; exit 2; }
done

log() { printf 'run.sh: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

# Installs Debian packages when we may (root, apt-get, not --no-install).
apt_install() {
    [ "$install" = 1 ] && [ "$(id -u)" = 0 ] && have apt-get || return 1
    log "installing $* from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 ||
        { apt-get update >/dev/null 2>&1 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1; }
}

libfuzzer_ok() {
    have clang || return 1
    local t
    t=$(mktemp -d)
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$t/t.c"
    local rc=0
    clang -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" >/dev/null 2>&1 || rc=1
    rm -rf "$t"
    return $rc
}

if [ "$engine" = auto ]; then
    if have afl-clang-fast && have afl-fuzz; then
        engine=afl
    elif apt_install afl++ clang && have afl-clang-fast && have afl-fuzz; then
        engine=afl
    elif libfuzzer_ok || { apt_install clang && libfuzzer_ok; }; then
        engine=libfuzzer
    else
        echo "run.sh: neither AFL++ (afl-clang-fast) nor clang with libFuzzer is available" >&2
        exit 2
    fi
fi
case "$engine" in
afl)
    if ! have afl-clang-fast || ! have afl-fuzz; then
        echo "run.sh: AFL++ is not installed (apt-get install afl++)" >&2
        exit 2
    fi ;;
libfuzzer) libfuzzer_ok || { echo "run.sh: clang -fsanitize=fuzzer does not work here" >&2; exit 2; } ;;
*) echo "run.sh: --engine is auto, afl or libfuzzer" >&2; exit 2 ;;
esac
log "engine: $engine, ${time_s}s per harness, inputs up to $max_len bytes"

# --- build ---------------------------------------------------------------------

bdir="$out/$engine"
rm -rf "$bdir/obj" "$bdir/cmplog"
mkdir -p "$bdir/obj" "$bdir/bin"

cflags=(-std=c11 -g -O1 -fno-omit-frame-pointer -D_GNU_SOURCE '-DLW_VERSION="fuzz"'
        -Wall -Wextra -Wno-unused-parameter
        -I"$root/common" -I"$root/common/include" -I"$here")
read -r -a cjson_cflags <<<"$(pkg-config --cflags libcjson 2>/dev/null || echo -I/usr/include/cjson)"
read -r -a cjson_libs <<<"$(pkg-config --libs libcjson 2>/dev/null || echo -lcjson)"
cflags+=("${cjson_cflags[@]}")

if [ "$engine" = afl ]; then
    cc=(afl-clang-fast)
    # afl-clang-fast adds ASan and UBSan (trapping) itself.
    export AFL_USE_ASAN=1 AFL_USE_UBSAN=1 AFL_QUIET=1
    lib_flags=()
    link_flags=(-fsanitize=fuzzer)
else
    cc=(clang)
    san=(-fsanitize=address -fsanitize=undefined -fno-sanitize-recover=undefined)
    lib_flags=(-fsanitize=fuzzer-no-link "${san[@]}")
    link_flags=(-fsanitize=fuzzer "${san[@]}")
fi

# The pure-logic part of common/ (what meson builds as lw_core), as an
# archive: each harness links only the members it needs.
objs=()
for src in "$root"/common/*.c; do
    case "$(basename "$src")" in redis_*) continue ;; esac
    obj="$bdir/obj/$(basename "$src" .c).o"
    "${cc[@]}" "${cflags[@]}" "${lib_flags[@]}" -c "$src" -o "$obj" ||
        { echo "run.sh: cannot compile $src" >&2; exit 2; }
    objs+=("$obj")
done
rm -f "$bdir/obj/libcore.a"
ar rcs "$bdir/obj/libcore.a" "${objs[@]}"
for n in "${names[@]}"; do
    "${cc[@]}" "${cflags[@]}" "${link_flags[@]}" "$here/fuzz_$n.c" "$bdir/obj/libcore.a" \
        "${cjson_libs[@]}" -lpthread -o "$bdir/bin/fuzz_$n" ||
        { echo "run.sh: cannot build fuzz_$n" >&2; exit 2; }
done
# AFL++ also gets a CMPLOG build (comparison operands logged), which lets
# it guess the field names and keywords the parsers compare against.
cmplog=0
if [ "$engine" = afl ]; then
    mkdir -p "$bdir/cmplog"
    cmplog=1
    for src in "$root"/common/*.c; do
        case "$(basename "$src")" in redis_*) continue ;; esac
        AFL_LLVM_CMPLOG=1 "${cc[@]}" "${cflags[@]}" -c "$src" \
            -o "$bdir/cmplog/$(basename "$src" .c).o" || { cmplog=0; break; }
    done
    if [ "$cmplog" = 1 ]; then
        rm -f "$bdir/cmplog/libcore.a"
        ar rcs "$bdir/cmplog/libcore.a" "$bdir"/cmplog/*.o
        for n in "${names[@]}"; do
            AFL_LLVM_CMPLOG=1 "${cc[@]}" "${cflags[@]}" "${link_flags[@]}" "$here/fuzz_$n.c" \
                "$bdir/cmplog/libcore.a" "${cjson_libs[@]}" -lpthread -o "$bdir/bin/fuzz_$n.cmplog" ||
                { cmplog=0; break; }
        done
    fi
    [ "$cmplog" = 1 ] || log "no CMPLOG build; fuzzing without it"
fi
log "built ${names[*]} in $bdir/bin"

# --- fuzz ----------------------------------------------------------------------

# The spool harness writes job files; a tmpfs keeps that fast.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    scratch=$(mktemp -d /dev/shm/lw-fuzz.XXXXXX)
else
    mkdir -p "$out/tmp"
    scratch=$(mktemp -d "$out/tmp/lw-fuzz.XXXXXX")
fi
trap 'rm -rf "$scratch"' EXIT

dict_for() { if [ "$1" = url ]; then echo "$here/url.dict"; else echo "$here/json.dict"; fi; }

summary=()
failed=0

# Shows how each of the first few crashing inputs in $1 fails.
replay() {
    local bin=$1 dir=$2 k=0 f
    for f in "$dir"/id:* "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-*; do
        [ -f "$f" ] || continue
        k=$((k + 1))
        [ $k -le 3 ] || break
        echo "--- $f" >&2
        (TMPDIR=$scratch timeout 20 "$bin" "$f" 2>&1 || true) |
            grep -E 'ERROR|SUMMARY|fuzz check failed|runtime error|#[0-3] ' | head -12 >&2 || true
    done
}

run_afl() {
    local n=$1 bin=$bdir/bin/fuzz_$1 wd=$bdir/$1
    rm -rf "$wd"
    mkdir -p "$wd"
    local rc=0 cmp=()
    [ "$cmplog" = 1 ] && cmp=(-c "$bin.cmplog")
    AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
        AFL_SKIP_CRASHES=1 AFL_NO_WARN_INSTABILITY=1 TMPDIR=$scratch \
        timeout -k 10 $((time_s + 120)) \
        afl-fuzz -V "$time_s" -m none -t 2000 -G "$max_len" -x "$(dict_for "$n")" "${cmp[@]}" \
        -i "$here/corpus/$n" -o "$wd" -- "$bin" >"$wd/afl.log" 2>&1 || rc=$?
    local stats=$wd/default/fuzzer_stats
    if [ ! -f "$stats" ]; then
        echo "run.sh: afl-fuzz failed for $n (exit $rc); see $wd/afl.log" >&2
        tail -20 "$wd/afl.log" >&2
        failed=1
        summary+=("$(printf '%-9s %-9s %6s %12s %9s %8s %8s %6s' "$n" afl - - - - - ERROR)")
        return
    fi
    local execs eps cov crashes hangs corpus
    execs=$(awk -F' *: *' '$1=="execs_done"{print $2}' "$stats")
    eps=$(awk -F' *: *' '$1=="execs_per_sec"{printf "%d", $2}' "$stats")
    corpus=$(awk -F' *: *' '$1=="corpus_count"{print $2}' "$stats")
    cov=$(awk -F' *: *' '$1=="bitmap_cvg"{print $2}' "$stats")
    crashes=$(find "$wd/default/crashes" -type f -name 'id:*' 2>/dev/null | wc -l)
    hangs=$(find "$wd/default/hangs" -type f -name 'id:*' 2>/dev/null | wc -l)
    summary+=("$(printf '%-9s %-9s %6s %12s %9s %8s %8s %6s %6s' "$n" afl "$time_s" "$execs" "$eps" "$corpus" "$cov" "$crashes" "$hangs")")
    if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
        failed=1
        local keep=$here/findings/$n
        mkdir -p "$keep"
        cp "$wd"/default/crashes/id:* "$keep/" 2>/dev/null || true
        cp "$wd"/default/hangs/id:* "$keep/" 2>/dev/null || true
        log "$n: $crashes crashes, $hangs hangs, copied to $keep"
        replay "$bin" "$wd/default/crashes"
    fi
    if [ "$minimize" = 1 ]; then
        rm -rf "$out/min/$n"
        mkdir -p "$out/min"
        TMPDIR=$scratch AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 timeout -k 10 600 \
            afl-cmin -m none -t 2000 -i "$wd/default/queue" -o "$out/min/$n" -- "$bin" >/dev/null 2>&1 ||
            log "$n: afl-cmin failed"
        log "$n: minimized corpus in $out/min/$n ($(find "$out/min/$n" -type f 2>/dev/null | wc -l) files)"
    fi
}

run_libfuzzer() {
    local n=$1 bin=$bdir/bin/fuzz_$1 wd=$bdir/$1
    rm -rf "$wd"
    mkdir -p "$wd/corpus" "$wd/artifacts"
    local rc=0
    TMPDIR=$scratch timeout -k 10 $((time_s + 120)) \
        "$bin" -max_total_time="$time_s" -max_len="$max_len" -timeout=2 -rss_limit_mb=2048 \
        -dict="$(dict_for "$n")" -print_final_stats=1 -artifact_prefix="$wd/artifacts/" \
        "$wd/corpus" "$here/corpus/$n" >"$wd/libfuzzer.log" 2>&1 || rc=$?
    local execs eps corpus crashes hangs
    execs=$(awk '/^stat::number_of_executed_units/{print $2}' "$wd/libfuzzer.log")
    eps=$(awk '/^stat::average_exec_per_sec/{print $2}' "$wd/libfuzzer.log")
    corpus=$(find "$wd/corpus" -type f | wc -l)
    crashes=$(find "$wd/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'oom-*' \) | wc -l)
    hangs=$(find "$wd/artifacts" -type f \( -name 'timeout-*' -o -name 'slow-unit-*' \) | wc -l)
    summary+=("$(printf '%-9s %-9s %6s %12s %9s %8s %8s %6s %6s' "$n" libfuzzer "$time_s" "${execs:--}" "${eps:--}" "$corpus" - "$crashes" "$hangs")")
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
        failed=1
        local keep=$here/findings/$n
        mkdir -p "$keep"
        cp "$wd"/artifacts/* "$keep/" 2>/dev/null || true
        log "$n: libFuzzer stopped with status $rc ($crashes crashes, $hangs hangs), inputs in $keep"
        grep -E 'ERROR|SUMMARY|fuzz check failed|runtime error' "$wd/libfuzzer.log" | head -12 >&2 || true
    fi
    if [ "$minimize" = 1 ]; then
        rm -rf "$out/min/$n"
        mkdir -p "$out/min/$n"
        TMPDIR=$scratch timeout -k 10 600 "$bin" -merge=1 -max_len="$max_len" \
            "$out/min/$n" "$here/corpus/$n" "$wd/corpus" >/dev/null 2>&1 || log "$n: merge failed"
        log "$n: minimized corpus in $out/min/$n ($(find "$out/min/$n" -type f | wc -l) files)"
    fi
}

for n in "${names[@]}"; do
    log "fuzzing $n for ${time_s}s"
    "run_$engine" "$n"
done

printf '%-9s %-9s %6s %12s %9s %8s %8s %6s %6s\n' harness engine secs execs exec/s corpus bitmap crash hang
printf '%s\n' "${summary[@]}"
if [ "$failed" != 0 ]; then
    echo "run.sh: FAILED: crashes or hangs found (inputs in $here/findings/)" >&2
    exit 1
fi
echo "run.sh: no crash in ${names[*]}"
