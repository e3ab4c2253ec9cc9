#!/bin/sh
# format.sh — format the project's C sources and headers with clang-format and
# the repository's .clang-format (issue 10, item 6 "House style").
#
#   scripts/format.sh               rewrite every file that is not formatted
#                                   (clang-format -i)
#   scripts/format.sh --check       change nothing; exit 1 and list the files
#                                   that are not formatted
#   scripts/format.sh [--check] FILE...
#                                   only these files
#
# The files are the *.c and *.h files git tracks (so build directories and
# what Meson generates into them, like scripts_data.c, are never touched);
# outside a git checkout, those under the source root minus build*/ and
# tests/fuzz/findings/. CLANG_FORMAT names the binary (default clang-format;
# scripts/install-deps.sh --dev installs it). Output differs a little between
# clang-format versions: the style was set with clang-format 14 (Debian 12).
set -eu

me=scripts/format.sh
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,/^set -eu/{ /^#/s/^# \{0,1\}//p; }' "$0"
}

check=0
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) echo "$me: unknown argument $1 (try --help)" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done

cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null 2>&1; then
  echo "$me: $cf not found (scripts/install-deps.sh --dev installs clang-format)" >&2
  exit 2
fi

list=$(mktemp)
trap 'rm -f "$list"' EXIT INT TERM
if [ $# -gt 0 ]; then
  printf '%s\n' "$@" >"$list"
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -- '*.c' '*.h' >"$list"
else
  find . \( -path './build*' -o -path './tests/fuzz/findings' -o -path './.git' \) -prune \
    -o -type f \( -name '*.c' -o -name '*.h' \) -print | sed 's|^\./||' | sort >"$list"
fi

status=0
bad=0
while IFS= read -r f; do
  [ -n "$f" ] || continue
  if [ ! -f "$f" ]; then
    echo "$me: $f: no such file" >&2
    status=2
    continue
  fi
  if [ "$check" = 1 ]; then
    # --dry-run names every line it would change; no output: formatted.
    if [ -n "$("$cf" --style=file --dry-run "$f" 2>&1)" ]; then
      echo "$f"
      bad=$((bad + 1))
    fi
  else
    "$cf" --style=file -i "$f" || status=2
  fi
done <"$list"

if [ "$check" = 1 ] && [ "$bad" -gt 0 ]; then
  echo "$me: $bad file(s) not formatted (run scripts/format.sh)" >&2
  [ "$status" = 0 ] && status=1
fi
exit "$status"
