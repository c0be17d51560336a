#!/usr/bin/env bash
# Start-up time of the single executable against `node dist/main.js`, side by
# side in one run, and the executable's size. Run on demand (not in CI):
#   npm run build && npm run build:sea && bench/startup.sh
#   RUNS=40 CODE_CACHE=compare bench/startup.sh   # also a build without V8 code cache
# Cases: --version (no mode module), --help (yargs lays out help), and pipe
# mode start-to-exit (empty stdin, a loopback daemon to connect to).
# Uses hyperfine when installed, else a date +%s%N loop.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-20}
SEA=dist/spread-pipe
[ -x "$SEA" ] && [ -f dist/main.js ] || { echo "build first: npm run build && npm run build:sea" >&2; exit 2; }

work=$(mktemp -d)
daemon_pid=
# Under set -e: the killed daemon's status (143) must not become this script's (as in demo.sh).
cleanup() {
  if [ -n "$daemon_pid" ]; then kill "$daemon_pid" 2>/dev/null || :; wait "$daemon_pid" 2>/dev/null || :; fi
  rm -rf "$work"
}
trap cleanup EXIT

bins=("node dist/main.js" "$SEA")
if [ "${CODE_CACHE:-}" = compare ]; then
  cp "$SEA" "$work/with-cache"
  scripts/build-sea.sh --no-code-cache >/dev/null
  cp "$SEA" "$work/no-cache"
  cp "$work/with-cache" "$SEA"
  bins=("node dist/main.js" "$work/no-cache" "$SEA")
fi

: > "$work/daemon.err" # before the first look below, which may come before the job opens it
"$SEA" --daemon --no-unix --listen 127.0.0.1:0 2> "$work/daemon.err" &
daemon_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/daemon.err" | head -1)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "startup: the daemon did not start" >&2; exit 1; }

echo "node $(node --version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "size: $SEA $(stat -c %s "$SEA") bytes ($(du -h "$SEA" | cut -f1)); node $(stat -c %s "$(node -p process.execPath)") bytes"

cmds=()
for args in "--version" "--help" "-g bench -s $port@127.0.0.1"; do
  for b in "${bins[@]}"; do cmds+=("$b $args"); done
done

if command -v hyperfine >/dev/null; then
  hyperfine -N --warmup 3 --runs "$RUNS" --style basic --export-markdown "$work/out.md" "${cmds[@]}" > /dev/null 2>&1
  cat "$work/out.md"
else
  printf '| Command | Mean [ms] | Min [ms] |\n|:---|---:|---:|\n'
  for c in "${cmds[@]}"; do
    total=0 min=
    for _ in $(seq "$RUNS"); do
      t0=$(date +%s%N)
      $c < /dev/null > /dev/null 2>&1 || true
      t=$(( ($(date +%s%N) - t0) / 1000 ))
      total=$((total + t))
      [ -z "$min" ] || [ "$t" -lt "$min" ] && min=$t
    done
    printf '| `%s` | %d.%d | %d.%d |\n' "$c" $((total / RUNS / 1000)) $((total / RUNS % 1000 / 100)) $((min / 1000)) $((min % 1000 / 100))
  done
fi
