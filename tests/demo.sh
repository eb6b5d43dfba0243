#!/usr/bin/env bash
# The main job: the C example server daemonized, exercised and stopped, saying what happens.
# Run by `make demo` (which builds the library and the example first). 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
srv=examples/c/build/dk-hello
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        for w in $(ps -o pid= --ppid "$pid"); do kill -9 "$w" 2>/dev/null || true; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT
get() { curl -s --max-time 5 "http://127.0.0.1:$port$1"; }
workers() { ps -o pid= --ppid "$pid" | tr -s ' \n' ' '; }

echo "== start: $srv -D -w 2 --listen 127.0.0.1:$port --pid $dir/demo.pid --log $dir/demo.log"
"$srv" -D -w 2 --listen "127.0.0.1:$port" --pid "$dir/demo.pid" --log "$dir/demo.log"
pid=$(cat "$dir/demo.pid")
echo "launcher exited 0; master pid $pid (from the PID file); workers: $(workers)"
echo "GET /     -> $(get /)"
echo "GET /ids  -> $(get /ids)"
echo "== second start with the same PID file (must refuse):"
if "$srv" -D --listen 127.0.0.1:0 --pid "$dir/demo.pid" 2>&1; then echo "unexpected success"; exit 1; fi
echo "== HUP: rolling restart"
before=$(workers); kill -HUP "$pid"; sleep 1.5
echo "workers $before-> $(workers)"
echo "== TTIN: one more worker"; kill -TTIN "$pid"; sleep 0.5; echo "workers: $(workers)"
echo "== USR2: zero-downtime upgrade"
kill -USR2 "$pid"
for _ in $(seq 50); do [ "$(cat "$dir/demo.pid")" != "$pid" ] && break; sleep 0.1; done
new=$(cat "$dir/demo.pid"); echo "master $pid -> $new"; pid=$new
echo "GET /pid  -> $(get /pid)"
echo "== TERM: graceful stop"
kill -TERM "$pid"
for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then echo "still running"; exit 1; fi
[ ! -e "$dir/demo.pid" ] && echo "stopped; PID file removed"
echo "== the log ($dir/demo.log):"; tail -n 8 "$dir/demo.log"
pid=""
echo "demo OK"
