#!/usr/bin/env bash
# The main job on the built-in daemon, end to end on this machine:
#   spread-pipe --daemon --write demo=FILE   (the central log box)
#   spread-pipe -g demo < access lines       (what Apache's CustomLog pipe runs)
# then shows the lines as the daemon wrote them. Loopback only; cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${SPREAD_PIPE:-"node dist/main.js"}
# What the demo runs must exist: build it when it is one of ours and missing.
case "$BIN" in
  "node dist/main.js") [ -f dist/main.js ] || npm run build ;;
  dist/spread-pipe | ./dist/spread-pipe) [ -x dist/spread-pipe ] || { echo "== building the single executable (npm run build:sea)"; npm run build:sea; } ;;
esac
work=$(mktemp -d)
daemon_pid=
# Runs under set -e: a daemon killed before its SIGTERM handler (wait says 143) must not
# replace the status and the message of whatever stopped the demo.
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || :; wait "$daemon_pid" 2>/dev/null || :; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== starting the built-in daemon (spread-pipe --daemon) on 127.0.0.1"
# Made here: the background job opens it for its stderr, maybe only after the first look below.
: > "$work/daemon.err"
$BIN --daemon --name loghost --listen 127.0.0.1:0 --no-unix \
  --write "demo=$work/all.log" --write-split "demo=$work/by-host" 2> "$work/daemon.err" &
daemon_pid=$!
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/daemon.err" | head -1)
  [ -n "$port" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.err" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { echo "demo: the daemon did not start" >&2; exit 1; }
echo "   listening on 127.0.0.1:$port"

lines=$(wc -l < examples/access.log.sample)
echo "== piping $lines Apache access lines through pipe mode, as two web servers"
head -n 6 examples/access.log.sample | $BIN -g demo -s "$port@127.0.0.1" -h web1
tail -n +7 examples/access.log.sample | $BIN -g demo -s "$port@127.0.0.1" -h web2

for _ in $(seq 100); do
  [ -f "$work/all.log" ] && [ "$(wc -l < "$work/all.log")" -ge "$lines" ] && break
  sleep 0.1
done
echo "== the daemon wrote $work/all.log:"
cat "$work/all.log"
echo "== and one file per web server (--write-split):"
for f in "$work"/by-host/*; do echo "   $(basename "$f"): $(wc -l < "$f") lines"; done
got=$(wc -l < "$work/all.log")
[ "$got" -eq "$lines" ] || { echo "demo: expected $lines lines, got $got" >&2; exit 1; }
echo "== all $lines lines arrived"
