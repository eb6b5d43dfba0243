#!/usr/bin/env bash
# Starman's hot restarts: Server::Starter's own start_server against `daemonkit run`, the
# same Starman (--workers 4) and the same load (wrk -t2 -c16), HUP every 2 s for 10 s
# (issue 14). For each supervisor and client kind (keep-alive, and clients that close each
# connection): failed requests (wrk's socket errors and non-2xx), requests per second during
# the restarts beside a run without restarts, and how long a HUP takes to complete (HUP to
# the old Starman master gone). Prints figures; asserts nothing.
#
#   tests/bench/bench_starter.sh            # RUNS=2 runs of each, 10 s each
#   RUNS=3 DUR=10 tests/bench/bench_starter.sh
#
# 127.0.0.1 only; every process started here is stopped by its pid.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUNS="${RUNS:-2}"
DUR="${DUR:-10}"
APP="$ROOT/tests/support/apps/starter.psgi"
DK="${DAEMONKIT_BIN:-$ROOT/target/release/daemonkit}"
WORK="$(mktemp -d /tmp/dk-starter.XXXXXX)"
declare -a STARTED=()

for t in starman start_server wrk curl; do
    command -v "$t" >/dev/null || { echo "bench_starter: $t is missing (tests/setup.sh)"; exit 1; }
done
if [ ! -x "$DK" ]; then
    (cd "$ROOT" && cargo build --quiet --release --bin daemonkit) || exit 1
fi

# A started pid and everything below it (Starman's master and workers under start_server or
# daemonkit), so that no worker is orphaned when its master goes first.
tree_of() {
    local p=$1 c
    echo "$p"
    for c in $(pgrep -P "$p" 2>/dev/null); do tree_of "$c"; done
}
cleanup() {
    local p all=()
    for p in "${STARTED[@]:-}"; do [ -n "$p" ] && all+=($(tree_of "$p")); done
    for p in "${all[@]:-}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 1
    for p in "${all[@]:-}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { local i; for ((i = 0; i < $2 * 20; i++)); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0; sleep 0.05; done; return 1; }
# the Starman master serving now: the only child of $1 (start_server), or $1's worker
starman_of() { pgrep -P "$1" | head -1; }

# start KIND PORT -> SUP (the supervisor's pid)
start() {
    case $1 in
        ss-term) start_server --port "127.0.0.1:$2" -- starman --workers 4 "$APP" >"$WORK/ss.log" 2>&1 &
                 SUP=$! ;;
        ss-quit) start_server --port "127.0.0.1:$2" --signal-on-hup=QUIT -- starman --workers 4 "$APP" \
                     >"$WORK/ss.log" 2>&1 &
                 SUP=$! ;;
        dk)      "$DK" run --listen "127.0.0.1:$2" -w 1 --stop-signal QUIT --log "$WORK/dk.log" -- \
                     "$(command -v starman)" --workers 4 "$APP" &
                 SUP=$! ;;
    esac
    STARTED+=("$SUP")
    wait_http "$2" 20 || { echo "bench_starter: $1 did not serve"; return 1; }
    sleep 1
}

# hups SUP: HUP every 2 s within the run; prints each HUP's completion in ms
hups() {
    local sup=$1 n=$(( DUR / 2 - 1 )) i old t0 t1 k
    for ((i = 1; i <= n; i++)); do
        sleep 2
        old=$(starman_of "$sup")
        t0=$(date +%s%N)
        kill -HUP "$sup"
        for ((k = 0; k < 400; k++)); do kill -0 "$old" 2>/dev/null || break; sleep 0.01; done
        t1=$(date +%s%N)
        echo $(( (t1 - t0) / 1000000 ))
    done
}

# wrk_run PORT CLOSE(0/1) -> "requests rps errors"
wrk_run() {
    local hdr=() out
    [ "$2" = 1 ] && hdr=(-H "Connection: close")
    out=$(wrk -t2 -c16 --timeout 5s -d"${DUR}s" "${hdr[@]}" "http://127.0.0.1:$1/" 2>&1)
    awk '
        / requests in / { req = $1 }
        /Requests\/sec:/ { rps = $2 }
        /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { err += $5 }
        END { printf "%d %.0f %d\n", req, rps, err }' <<<"$out"
}

printf '%-24s %-10s %5s %9s %9s %8s %12s %s\n' supervisor clients run req/s base\ req/s errors "HUP ms" ""
for kind in ss-term ss-quit dk; do
    for close in 0 1; do
        clients=$([ "$close" = 1 ] && echo close || echo keepalive)
        for ((run = 1; run <= RUNS; run++)); do
            port=$(free_port)
            start "$kind" "$port" || continue
            read -r _ base_rps _ < <(wrk_run "$port" "$close")
            hups "$SUP" > "$WORK/hups" &
            hp=$!
            read -r req rps err < <(wrk_run "$port" "$close")
            wait "$hp"
            hupms=$(sort -n "$WORK/hups" | awk '{ a[NR] = $1 } END { if (NR) printf "%d..%d", a[1], a[NR] }')
            name=$(case $kind in ss-term) echo "start_server (TERM)";; ss-quit) echo "start_server (QUIT)";;
                   dk) echo "daemonkit run (QUIT)";; esac)
            printf '%-24s %-10s %5d %9s %9s %8s %12s\n' "$name" "$clients" "$run" "$rps" "$base_rps" "$err" "$hupms"
            tree=$(tree_of "$SUP")
            kill -TERM "$SUP" 2>/dev/null
            for ((k = 0; k < 200; k++)); do kill -0 "$SUP" 2>/dev/null || break; sleep 0.05; done
            for p in $tree; do kill -KILL "$p" 2>/dev/null; done   # no orphaned Starman worker
            wait "$SUP" 2>/dev/null
        done
    done
done
