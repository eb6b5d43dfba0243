#!/usr/bin/env bash
# Accept balance (BENCHMARKS.md section 10): dk-hello -w N with its one shared listening
# socket against dk-hello -w N --reuseport (one SO_REUSEPORT socket per worker slot, held
# by the master: dk_supervisor_add_listener_slots), under wrk, steady and with a HUP (rolling restart)
# every 2 s. Prints one line per run and a summary: requests per worker (max/min), p99,
# errors (non-2xx + socket errors), and slots/shared ratios. Nothing asserts on time.
#   tests/bench/bench_accept.sh                     # 3 reps x 10 s per variant, ~9 minutes
#   DUR=3 REPS=1 tests/bench/bench_accept.sh        # a quick look
#   WORKERS="4 16" CONNS="close keepalive" WRK_C=64 # the defaults
# Runs are interleaved: for each rep, w, connection mode and load, both servers run back
# to back, in an order that alternates from rep to rep.
# 127.0.0.1 only; every loop bounded; every process started here is stopped by its pid.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="$ROOT/tests/bench"
DUR="${DUR:-10}"
REPS="${REPS:-3}"
WORKERS="${WORKERS:-4 16}"
CONNS="${CONNS:-close keepalive}"
WRK_C="${WRK_C:-64}"
WORK="$(mktemp -d /tmp/dk-bench-accept.XXXXXX)"
declare -a STARTED=()

ours() { [ -n "$1" ] && grep -qaE 'dk-hello' "/proc/$1/cmdline" 2>/dev/null; }
cleanup() {
    local p
    for p in "${STARTED[@]:-}"; do ours "$p" && kill -TERM "$p" 2>/dev/null; done
    sleep 0.5
    for p in "${STARTED[@]:-}"; do ours "$p" && kill -KILL "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_gone() { local i; for ((i = 0; i < $2 * 20; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; return 1; }
wait_http() { local i; for ((i = 0; i < $2 * 20; i++)); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0; sleep 0.05; done; return 1; }
stop_pid() {
    ours "$1" || return 0
    kill -TERM "$1" 2>/dev/null; wait_gone "$1" 15 || { ours "$1" && kill -KILL "$1" 2>/dev/null; wait_gone "$1" 5; }
}

for t in wrk curl python3 cc; do
    command -v "$t" >/dev/null || { echo "bench_accept: $t not found (apt-get install wrk curl python3 gcc)"; exit 1; }
done
# the library and dk-hello as of this tree (make rebuilds only what is stale)
(cd "$ROOT" && make lib > "$WORK/build.log" 2>&1 && make -C examples/c build/dk-hello >> "$WORK/build.log" 2>&1) \
    || { cat "$WORK/build.log"; exit 1; }
DKHELLO="$ROOT/examples/c/build/dk-hello"
"$DKHELLO" --help | grep -q -- --reuseport || { echo "bench_accept: $DKHELLO has no --reuseport"; exit 1; }

echo "accept balance  $(date -u '+%Y-%m-%d %H:%M:%S UTC')  $(uname -srm)  cpus=$(nproc)  loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}') -t2 -c$WRK_C --timeout 5s -d${DUR}s --latency, $REPS reps; workers: $WORKERS; connections: $CONNS"
echo "shared = $DKHELLO -w N (one listening socket, every worker polls it)"
echo "slots  = $DKHELLO -w N --reuseport (one SO_REUSEPORT socket per worker slot, held by the master)"

# hup_driver PID DUR: a HUP every 2 s while wrk runs (bounded by DUR)
hup_driver() {
    local t=0
    while [ "$t" -lt $(( $2 - 2 )) ]; do
        sleep 2; t=$((t + 2))
        ours "$1" && kill -HUP "$1"
    done
}

# one MODE W CONN LOAD REP: start the server, run wrk, print the run's line, stop it
one() {
    local mode=$1 w=$2 conn=$3 load=$4 rep=$5 port pid drv="" line hdr=() opt=()
    [ "$mode" = slots ] && opt=(--reuseport)
    [ "$conn" = close ] && hdr=(-H 'Connection: close')
    port=$(free_port)
    : > "$WORK/dk.log"; rm -f "$WORK/dk.pid"
    if ! "$DKHELLO" --listen "127.0.0.1:$port" -D --pid "$WORK/dk.pid" -w "$w" "${opt[@]}" --log "$WORK/dk.log" \
            2> "$WORK/launch.err"; then
        echo "run $mode w=$w: did not start"; cat "$WORK/launch.err"; tail -5 "$WORK/dk.log"; return 1
    fi
    pid=$(cat "$WORK/dk.pid"); STARTED+=("$pid")
    wait_http "$port" 10 || { echo "run $mode w=$w: no answer"; stop_pid "$pid"; return 1; }
    if [ "$load" = hup ]; then hup_driver "$pid" "$DUR" & drv=$!; fi
    wrk -t2 -c"$WRK_C" --timeout 5s -d"${DUR}s" --latency "${hdr[@]}" -s "$BENCH/accept_count.lua" \
        "http://127.0.0.1:$port/" > "$WORK/wrk.txt" 2>&1
    [ -n "$drv" ] && wait "$drv"
    line=$(grep '^RESULT ' "$WORK/wrk.txt" | sed 's/^RESULT //')
    [ -n "$line" ] || { echo "run $mode w=$w: wrk gave no result"; sed 's/^/  /' "$WORK/wrk.txt"; }
    local pids max min mm
    pids=$(sed -n 's/.* pids=\([0-9]*\).*/\1/p' <<< "$line")
    max=$(sed -n 's/.* max=\([0-9]*\).*/\1/p' <<< "$line")
    min=$(sed -n 's/.* min=\([0-9]*\).*/\1/p' <<< "$line")
    # every worker must have answered for max/min to mean anything (steady runs)
    mm=$(awk -v a="${max:-0}" -v b="${min:-0}" -v p="${pids:-0}" -v w="$w" -v l="$load" \
        'BEGIN { if (l == "steady" && p < w) print "inf"; else if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    printf 'run rep=%d w=%-2d conn=%-9s load=%-6s mode=%-6s %s maxmin=%s rolls_done=%d\n' \
        "$rep" "$w" "$conn" "$load" "$mode" "$line" "$mm" "$(grep -c 'rolling restart done' "$WORK/dk.log")" \
        | tee -a "$WORK/runs.txt"
    stop_pid "$pid"
}

for ((rep = 1; rep <= REPS; rep++)); do
    for w in $WORKERS; do
        for conn in $CONNS; do
            for load in steady hup; do
                if (( rep % 2 )); then order="shared slots"; else order="slots shared"; fi
                for mode in $order; do one "$mode" "$w" "$conn" "$load" "$rep"; done
            done
        done
    done
done

echo
echo "== summary (medians over $REPS reps; errors = non-2xx + socket errors, summed)"
printf '%-3s %-9s %-6s %-6s %9s %9s %9s %13s %7s\n' w conn load mode req/s p50_us p99_us 'max/min(req)' errors
med() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
declare -A P99 RPS ERR
for w in $WORKERS; do
    for conn in $CONNS; do
        for load in steady hup; do
            for mode in shared slots; do
                sel=$(grep -E "w=$w +conn=$conn +load=$load +mode=$mode " "$WORK/runs.txt")
                k="$w/$conn/$load/$mode"
                RPS[$k]=$(field rps <<< "$sel" | med)
                P99[$k]=$(field p99_us <<< "$sel" | med)
                p50=$(field p50_us <<< "$sel" | med)
                mm=$(field maxmin <<< "$sel" | sed 's/inf/1e9/' | med | sed 's/^1e+09$/inf/')
                ERR[$k]=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^(non2xx|sockerr)=/) { split($i, a, "="); s += a[2] } } END { print s + 0 }' <<< "$sel")
                printf '%-3s %-9s %-6s %-6s %9s %9s %9s %13s %7s\n' "$w" "$conn" "$load" "$mode" \
                    "${RPS[$k]}" "$p50" "${P99[$k]}" "$([ "$load" = steady ] && echo "$mm" || echo -)" "${ERR[$k]}"
            done
        done
    done
done
echo
echo "== slots / shared (median p99, median req/s; < 1 p99: slots better)"
wins=0; cases=0; hup_err=0
for w in $WORKERS; do
    for conn in $CONNS; do
        for load in steady hup; do
            a="$w/$conn/$load/slots"; b="$w/$conn/$load/shared"
            r=$(awk -v a="${P99[$a]}" -v b="${P99[$b]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
            q=$(awk -v a="${RPS[$a]}" -v b="${RPS[$b]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
            echo "w=$w conn=$conn load=$load: p99 ratio $r, req/s ratio $q, errors slots ${ERR[$a]} shared ${ERR[$b]}"
            cases=$((cases + 1))
            awk -v r="$r" 'BEGIN { exit !(r + 0 < 1 && r != "n/a") }' && wins=$((wins + 1))
            [ "$load" = hup ] && hup_err=$((hup_err + ERR[$a]))
        done
    done
done
echo "slots better on p99 in $wins of $cases cases; slots errors during HUP: $hup_err"
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
