#!/usr/bin/env bash
# demo.sh — the README's first command: install what is missing, build, and
# run a small lanework fleet (3 worker processes) on the example tenant
# (examples/tenant/, a C module and an exec handler) and, beside it, the
# Python app (examples/python-app/, a persistent Python handler enqueued
# with lanework.Client), showing jobs being enqueued and finishing.
#
#   scripts/demo.sh              use LANEWORK_REDIS_URL when set, otherwise
#                                start a private redis-server on a unix
#                                socket in a temp dir (stopped at the end)
#   scripts/demo.sh --keep       leave the temp dir (logs, spool) behind
#
# Everything it starts is stopped when it exits, also on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

keep=0
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    -h | --help) sed -n '2,/^set -eu/{ /^#/s/^# \{0,1\}//p; }' "$0"; exit 0 ;;
    *) echo "scripts/demo.sh: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "installing missing Debian packages (if any) and building"
scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
cli=$root/build/enqueue-cli/lanework
workerbin=$root/build/worker/lanework-worker

tmp=$(mktemp -d /tmp/lanework-demo.XXXXXX)
pids=()
redis_pid=
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  if [ "$keep" = 1 ]; then echo "demo files kept in $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${LANEWORK_REDIS_URL:-}" ]; then
  say "starting a private redis-server on $tmp/redis.sock"
  redis-server --unixsocket "$tmp/redis.sock" --port 0 --save '' --appendonly no \
    --dir "$tmp" --logfile "$tmp/redis.log" &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -s "$tmp/redis.sock" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  export LANEWORK_REDIS_URL="unix://$tmp/redis.sock"
else
  say "using LANEWORK_REDIS_URL from the environment"
fi
# A demo namespace of its own, so a shared Redis is left as it was found
# (apart from this namespace's keys, which expire with their retention).
export LANEWORK_NAMESPACE=${LANEWORK_NAMESPACE:-lwdemo$$}

spool=$tmp/uploads
mkdir -p "$spool"
# Beside it, the Python app (examples/python-app): tenant "school", its job
# code one persistent Python handler (lanework.handler).
school_spool=$tmp/school-uploads
mkdir -p "$school_spool"
pypath=$root/clients/python:$root/examples/python-app
python=$(command -v python3)
"$python" -c 'import redis' 2>/dev/null || python=/usr/bin/python3 # a venv or pyenv python may lack redis-py
sed -e "s|@MODULE@|$root/build/examples/tenant/example.so|" \
    -e "s|@THUMBNAIL@|$root/examples/tenant/thumbnail.sh|" \
    -e "s|@SPOOL@|$spool|" \
    examples/tenant/registry.json.in > "$tmp/acme.json"
sed -e "s|@HANDLER@|[\"env\", \"PYTHONPATH=$pypath\", \"$python\", \"-m\", \"school.jobs\"]|" \
    -e "s|@SPOOL@|$school_spool|" \
    examples/python-app/registry.json.in > "$tmp/school.json"
# A registry directory: one tenant per file.
mkdir "$tmp/registry"
mv "$tmp/acme.json" "$tmp/school.json" "$tmp/registry/"
export LANEWORK_REGISTRY=$tmp/registry

say "an application spools two uploads while no worker runs"
for n in 1 2; do
  id=upload-$n
  mkdir "$spool/.tmp-$id"
  printf 'student,grade\nann,%d\nbob,%d\n' $((80 + n)) $((70 + n)) > "$spool/.tmp-$id/grades.csv"
  printf '{"job_id":"%s","status":"queued","payload":{"files":["grades.csv"]}}\n' "$id" \
    > "$spool/.tmp-$id/job.json"
  mv "$spool/.tmp-$id" "$spool/$id"
  echo "  $spool/$id/job.json"
done

say "starting 3 workers (fork isolation; the third with thread isolation)"
for i in 1 2 3; do
  iso=fork
  [ "$i" = 3 ] && iso=thread
  "$workerbin" --name "demo-$i" --queue default --queue chat --queue bulk \
    --concurrency 4 --isolation "$iso" 2>"$tmp/worker-$i.log" &
  pids+=($!)
  echo "  demo-$i (pid $!, --isolation $iso, log $tmp/worker-$i.log)"
done

say "enqueueing a mix of jobs with the lanework CLI"
ids=(upload-1 upload-2)
enq() { local id; id=$("$cli" enqueue --tenant acme "$@"); ids+=("$id"); echo "  $id  $*"; }
enq --kind exam --payload '{"student":"ann","answers":["a","c","d"],"key":["a","b","d"]}'
enq --kind exam --payload '{"student":"bob","answers":["a","b","d"],"key":["a","b","d"]}'
enq --kind profile_update --payload '{"user":"ann","fields":{"email":"ann@example.org","locale":"pt-BR"}}'
enq --kind profile_update --payload '{"user":"bob","fields":{"email":"no-domain"}}'
enq --kind thumbnail --payload '{"image":"cat.png","size":64}'
enq --kind flaky --payload '{"succeed_on":2}'
for m in "hi" "what is a lane?" "thanks"; do
  enq --kind chat --queue chat --lane session-ann --payload "{\"message\":\"$m\"}"
done
enq --kind chat --queue chat --lane session-bob --payload '{"message":"hello"}'

say "a batch of 200 exams from one --batch (pipelined)"
for i in $(seq 200); do
  printf '{"kind":"exam","queue":"bulk","payload":{"student":"s%d","answers":["a","b"],"key":["a","b"]}}\n' "$i"
done > "$tmp/batch.jsonl"
batch_ids=$("$cli" enqueue --tenant acme --batch "$tmp/batch.jsonl")
echo "  $(wc -l <<<"$batch_ids") ids printed"

say "waiting for every job (lanework wait)"
rc=0
"$cli" wait --tenant acme --timeout 60 "${ids[@]}" $batch_ids || rc=$?
echo "  lanework wait exited $rc (1: some job ended failed, as bob's bad email must)"

say "how each job ended (lanework status)"
for id in "${ids[@]}"; do
  "$cli" status --tenant acme "$id" |
    python3 -c 'import json,sys; j=json.load(sys.stdin); print("  %-28s %-15s %-9s attempt %d/%d  %s" % (j["id"], j["kind"], j["status"], j["attempt"], j["attempts"], json.dumps(j["result"]) if j["result"] is not None else "error: %s" % j["error"]))'
done

say "the chat session's events, in order (lanework events)"
"$cli" events --tenant acme |
  python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    if e["lane"] == "session-ann":
        print("  %-16s %-20s attempt %s worker %s" % (e["type"], e["job"], e["attempt"], e["worker"]))'

say "the Python app (examples/python-app): spools an upload, enqueues with lanework.Client; one persistent Python handler serves it"
PYTHONPATH=$pypath "$python" -m school.app "$school_spool"

say "the fleet (lanework workers) and the counts (lanework stats)"
"$cli" workers
"$cli" stats --tenant acme

say "stopping the workers with SIGTERM (they drain, then exit 0)"
for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do wait "$p" && echo "  worker $p exited 0"; done
pids=()
echo
echo "Done. The spooled uploads now say:"
for n in 1 2; do echo "  $(cat "$spool/upload-$n/job.json")"; done
