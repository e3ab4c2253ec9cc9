#!/usr/bin/env bash
# The README's second command: install what is missing, build, run every test
# (unit, integration, chaos), then run them all once more under
# AddressSanitizer + UndefinedBehaviorSanitizer.
#
#   scripts/test.sh            both passes
#   scripts/test.sh --quick    the normal build only
#   scripts/test.sh -- ARGS    extra arguments for `meson test` (e.g. --suite unit)
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "scripts/test.sh: unknown argument $1 (try --quick, or -- ARGS for meson test)" >&2; exit 2 ;;
  esac
  shift
done

scripts/install-deps.sh --dev   # --dev: valgrind, gcovr and clang-format too

# run_pass DIR PROCESSES TEST-ARGS SETUP-ARGS...: configure, build, and run
# the tests with PROCESSES tests side by side (those that may run beside
# others); TEST-ARGS (one word, may be empty) goes to `meson test`.
run_pass() {
  local dir=$1 procs=$2 test_args=$3; shift 3
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@" >/dev/null
  fi
  ninja -C "$dir"
  # shellcheck disable=SC2086 # test_args is one optional word
  meson test -C "$dir" --print-errorlogs --num-processes "$procs" $test_args "${extra[@]}"
}
# Most integration tests wait on workers and Redis rather than compute:
# both passes run one more of them than there are cores. The sanitized
# build computes 2-3 times slower, but its tests mostly wait as long as the
# plain build's (on 2 cores, one test per core, its pass kept a fifth of
# the CPU busy and most tests took their plain-build times); the tests that
# need the cores run alone in both passes (is_parallel: false).
cores=$(nproc 2>/dev/null || echo 2)

echo "== build and test (build/)"
run_pass build "$((cores + 1))" ""

if [ "$quick" = 0 ]; then
  echo "== build and test under ASan + UBSan (build-asan/)"
  # Modules are shared objects resolved against the sanitized worker at
  # dlopen time, hence b_lundef=false. The clients' suites test Python and
  # Node code, which the sanitizers do not see (the C paths they drive run
  # sanitized in the integration suite): the plain pass runs them.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    run_pass build-asan "$((cores + 1))" "--no-suite=clients" -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug
fi
echo "== all tests passed"
