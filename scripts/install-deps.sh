#!/bin/sh
# install-deps.sh — install the Debian packages lanework needs (Debian 12
# "bookworm"; Ubuntu 22.04+ has the same names). Used by the README,
# scripts/test.sh (and so .ci/run) and deploy/Dockerfile.
#
#   scripts/install-deps.sh             build and test: compiler, Meson, the
#                                       libraries' -dev packages, Check,
#                                       redis-server, python3, and for the
#                                       clients' tests (clients/) redis-py,
#                                       pytest, RQ (the benchmark's yardstick),
#                                       node and npm, then `npm ci` in
#                                       clients/node (ioredis, from the npm
#                                       registry, pinned by package-lock.json)
#                                       and in tests/manifests (the Kubernetes
#                                       and KEDA schemas the manifests of
#                                       deploy/k8s are checked against)
#   scripts/install-deps.sh --dev       the same plus valgrind, gcovr (the
#                                       coverage report, README "Coverage")
#                                       and clang-format (scripts/format.sh)
#   scripts/install-deps.sh --bench     the same plus the peers of the
#                                       side-by-side benchmark
#                                       (tests/bench/peers/run.sh): Sidekiq
#                                       (Debian ruby-sidekiq) and `npm ci` in
#                                       tests/bench/peers (BullMQ, pinned by
#                                       its package-lock.json); RQ is already
#                                       among the test packages
#   scripts/install-deps.sh --build     only what building needs (no Check,
#                                       Redis or python3: meson -Dtests=false,
#                                       for deploy/Dockerfile's build stage)
#   scripts/install-deps.sh --runtime   only the shared libraries the built
#                                       binaries load (for a runtime image)
#   scripts/install-deps.sh --check     install nothing; exit 1 and list what
#                                       is missing
#   scripts/install-deps.sh --list      install nothing; print the packages the
#                                       other options name, one line
#
# What is already installed is checked with dpkg-query first: when nothing is
# missing the script exits at once, without apt-get update or root, so every
# run after the first is fast. Otherwise it runs apt-get update then
# apt-get install, non-interactively, as root or through sudo.
set -eu

me=scripts/install-deps.sh

# libc6-dev: gcc only recommends it, and recommends are not installed.
# libssl-dev: lanework-tls.so (rediss://) links OpenSSL.
compile_pkgs="meson ninja-build pkg-config gcc libc6-dev libhiredis-dev libevent-dev libcjson-dev libssl-dev"
# What the unit and integration tests need on top.
# openssl: the TLS tests make their CA and certificates with it.
# groff-base: test_docs renders the man pages with groff -ww (warnings fail).
# chromium, chromium-driver, python3-selenium, fonts-dejavu-core: the
# dashboard's browser test (tests/integration/test_dashboard_browser.py)
# drives Debian's Chromium headless through Selenium and takes screenshots.
# prometheus: its promtool evaluates the autoscaling manifests' PromQL
# (tests/manifests/test_queries.py) and checks /metrics' text format.
test_pkgs="check redis-server redis-tools python3 python3-redis python3-pytest python3-rq openssl groff-base chromium chromium-driver python3-selenium fonts-dejavu-core prometheus"
# node and npm: asked of apt only when missing from PATH -- a node installed
# another way (NodeSource's nodejs bundles npm) must not meet Debian's npm.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  test_pkgs="$test_pkgs nodejs npm"
fi
dev_pkgs="valgrind gcovr clang-format"
# The benchmark's peers (tests/bench/peers/): Sidekiq; BullMQ comes from npm.
bench_pkgs="ruby-sidekiq"
runtime_pkgs="libhiredis0.14 libevent-2.1-7 libevent-core-2.1-7 libevent-extra-2.1-7 libevent-openssl-2.1-7 libssl3 libcjson1 ca-certificates"

usage() {
  sed -n '2,/^set -eu/{ /^#/s/^# \{0,1\}//p; }' "$0"
}

mode=build
dev=0
bench=0
check_only=0
list_only=0
while [ $# -gt 0 ]; do
  case $1 in
    --dev) dev=1 ;;
    --bench) bench=1 ;;
    --runtime) mode=runtime ;;
    --build) mode=compile ;;
    --check) check_only=1 ;;
    --list) list_only=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "$me: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

case $mode in
  runtime) wanted=$runtime_pkgs ;;
  compile) wanted=$compile_pkgs ;;
  *) wanted="$compile_pkgs $test_pkgs" ;;
esac
if [ "$dev" = 1 ]; then
  wanted="$wanted $dev_pkgs"
fi
if [ "$bench" = 1 ]; then
  wanted="$wanted $bench_pkgs"
fi

if [ "$list_only" = 1 ]; then
  echo "$wanted"
  exit 0
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "$me: this is not a Debian-like system (no dpkg-query/apt-get)." >&2
  echo "$me: install the equivalents of these Debian packages by hand: $wanted" >&2
  exit 1
fi

# The packages of $wanted that are not fully installed ("ii" in dpkg's
# abbreviated status: desired install, currently installed).
missing=
for p in $wanted; do
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
  case $status in
    ii*) ;;
    *) missing="$missing $p" ;;
  esac
done
missing=${missing# }

# npm_ci DIR MODULE: `npm ci` in DIR when DIR/node_modules/MODULE is missing
# or older than package-lock.json.
npm_ci() {
  dir=$(dirname "$0")/../$1
  if [ ! -f "$dir/package-lock.json" ] || [ "$check_only" = 1 ]; then return 0; fi
  if [ -d "$dir/node_modules/$2" ] && [ ! "$dir/package-lock.json" -nt "$dir/node_modules" ]; then return 0; fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "$me: npm missing: $1's modules not installed" >&2
    return 1
  fi
  echo "$me: npm ci in $1"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) && touch "$dir/node_modules"
}

# clients/node's modules (ioredis) for the clients' tests, tests/manifests'
# (kubernetes-models, @kubernetes-models/keda, yaml); with --bench,
# tests/bench/peers' (BullMQ).
node_modules() {
  case $mode in compile | runtime) return 0 ;; esac
  npm_ci clients/node ioredis || return 1
  npm_ci tests/manifests kubernetes-models || return 1
  if [ "$bench" = 1 ]; then npm_ci tests/bench/peers bullmq || return 1; fi
}

if [ -z "$missing" ]; then
  echo "$me: all $(echo "$wanted" | wc -w | tr -d ' ') packages already installed"
  node_modules
  exit 0
fi
if [ "$check_only" = 1 ]; then
  echo "$me: missing: $missing" >&2
  exit 1
fi

# Root, or sudo. No sudo prompt is forced on a terminal-less run: sudo -n
# fails at once (with a clear message) where a password would be needed.
if [ "$(id -u)" = 0 ]; then
  as_root=
elif command -v sudo >/dev/null 2>&1; then
  if [ -t 0 ]; then as_root="sudo"; else as_root="sudo -n"; fi
else
  echo "$me: need root to install: $missing" >&2
  echo "$me: run as root, or install sudo, or: apt-get install $missing" >&2
  exit 1
fi

echo "$me: installing: $missing"
# DEBIAN_FRONTEND: never ask a question. The --force-conf* options keep
# existing configuration files without asking either.
# shellcheck disable=SC2086 # $as_root and $missing are word lists on purpose
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing

# Say what is still missing, if anything (a package name from another
# release, a held package...), rather than failing later in the build.
still=
for p in $missing; do
  case $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true) in
    ii*) ;;
    *) still="$still $p" ;;
  esac
done
if [ -n "$still" ]; then
  echo "$me: still not installed:$still" >&2
  exit 1
fi
node_modules
echo "$me: done"
