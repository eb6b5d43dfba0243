#!/usr/bin/env bash
# daemonkit benchmarks (see BENCHMARKS.md). Prints figures; asserts correctness targets
# (winners, lost signal kinds, errors) only in the summary, never timings.
#   tests/bench/run.sh            # everything, ~3 minutes
#   DUR=10 tests/bench/run.sh     # wrk duration per run in seconds (default 20; Starman: DUR/2)
#   SKIP_STARMAN=1 SKIP_RESPAWN=1 # skip optional parts
#   ONLY=signal tests/bench/run.sh # only these parts (comma-separated): footprint, launch,
#                                  # heap, signal, restarts, pidfile, respawn, workers, accept
#   ONLY=accept tests/bench/run.sh # accept balance: shared socket vs --reuseport (~10 minutes;
#                                  # tests/bench/bench_accept.sh, ACCEPT_DUR/ACCEPT_REPS)
#   HEAP_ROUNDS=5                  # rounds per heap size in the heap part (default 9)
#   ONLY=workers tests/bench/run.sh # many workers: dk-hello and gunicorn at -w 1, 16, 64, 256
#                                  # (WORKERS_N="1 16" and WORKERS_REPS=3 change the sizes
#                                  # and repetitions; WORKERS_RESPAWN=30 rounds per size;
#                                  # WORKERS_DKHELLO=PATH another dk-hello build, e.g. an
#                                  # older commit's; SKIP_GUNICORN=1 leaves gunicorn out)
# The signal part also builds the signal-hook reader, tests/bench/sighook (cargo, crates.io),
# and runs bench_signal_path.c (where the time of the signal path goes, BENCHMARKS.md section
# 11); DK_BEFORE_LIB=/path/libdaemonkit.so adds that library's readers (dk_before,
# dk_wait_before) to it, to compare a change with the library before it in the same run.
# 127.0.0.1 only; every loop bounded; every process started here is stopped by its pid.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="$ROOT/tests/bench"
DUR="${DUR:-20}"
SDUR="${SDUR:-$(( DUR / 2 ))}"
WORK="$(mktemp -d /tmp/dk-bench.XXXXXX)"
CC="${CC:-cc}"
CFLAGS="-O2 -g -Wall -Wextra"
DKLIB="$ROOT/target/lib"
declare -a STARTED=()   # pids of long-running processes started here (daemons' pids too)
SUMMARY=()
FAILS=0

# ours PID: the pid still runs one of our servers (guards against a recycled pid)
ours() { [ -n "$1" ] && grep -qaE 'dk-hello|starman|gunicorn' "/proc/$1/cmdline" 2>/dev/null; }
cleanup() {
    local p
    for p in "${STARTED[@]:-}"; do
        ours "$p" && kill -TERM "$p" 2>/dev/null
    done
    sleep 0.5
    for p in "${STARTED[@]:-}"; do
        ours "$p" && kill -KILL "$p" 2>/dev/null
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

hdr() { printf '\n== %s\n' "$*"; }
# want PART: PART is selected (every part when ONLY is unset)
want() { [ -z "${ONLY:-}" ] || [[ ",$ONLY," == *",$1,"* ]]; }
note() { SUMMARY+=("$*"); }
target() { # target NAME OK(0/1) DETAIL
    if [ "$2" = 1 ]; then note "target met:    $1 ($3)"; else note "TARGET MISSED: $1 ($3)"; FAILS=$((FAILS+1)); fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
# wait_gone PID SECONDS: bounded wait for a process to disappear
wait_gone() { local i; for ((i = 0; i < $2 * 20; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done; return 1; }
# wait_http PORT SECONDS
wait_http() { local i; for ((i = 0; i < $2 * 20; i++)); do curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/" && return 0; sleep 0.05; done; return 1; }
stop_pid() { # stop_pid PID: TERM, bounded wait, then KILL
    ours "$1" || return 0
    kill -TERM "$1" 2>/dev/null; wait_gone "$1" 15 || { ours "$1" && kill -KILL "$1" 2>/dev/null; wait_gone "$1" 5; }
}

dk_start() { # dk_start PORT -> sets DKPID (parts 4 and 6)
    : > "$WORK/dk.log"
    "$ROOT/examples/c/build/dk-hello" --listen "127.0.0.1:$1" -D --pid "$WORK/dk.pid" -w 4 \
        --log "$WORK/dk.log" || return 1
    DKPID=$(cat "$WORK/dk.pid"); STARTED+=("$DKPID")
    wait_http "$1" 10
}
dk_stop() { local p; p=$(cat "$WORK/dk.pid" 2>/dev/null); STARTED+=("$p"); stop_pid "$p"; stop_pid "$DKPID"; }

echo "daemonkit benchmarks  $(date -u '+%Y-%m-%d %H:%M:%S UTC')  $(uname -srm)  cpus=$(nproc)"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')  loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- build
hdr "build"
if [ ! -e "$DKLIB/libdaemonkit.so" ]; then (cd "$ROOT" && make lib) || exit 1; fi
if { want restarts || want respawn || want workers; } && [ ! -x "$ROOT/examples/c/build/dk-hello" ]; then
    make -C "$ROOT/examples/c" || exit 1
fi
DKLINK=(-I"$ROOT/include" -L"$DKLIB" -Wl,-rpath,"$DKLIB" -ldaemonkit)
set -e
$CC $CFLAGS -o "$WORK/launch_dk" "$BENCH/launch_dk.c" "${DKLINK[@]}"
$CC $CFLAGS -o "$WORK/launch_ld" "$BENCH/launch_ld.c" -ldaemon
$CC $CFLAGS -o "$WORK/bench_launch" "$BENCH/bench_launch.c"
$CC $CFLAGS -o "$WORK/bench_heap" "$BENCH/bench_heap.c" "${DKLINK[@]}" -ldaemon
$CC $CFLAGS -o "$WORK/bench_signal" "$BENCH/bench_signal.c" "${DKLINK[@]}" -ldaemon
$CC $CFLAGS -o "$WORK/bench_signal_path" "$BENCH/bench_signal_path.c" "${DKLINK[@]}" -ldl
$CC $CFLAGS -o "$WORK/bench_pidfile" "$BENCH/bench_pidfile.c" "${DKLINK[@]}"
$CC $CFLAGS -o "$WORK/bench_respawn" "$BENCH/bench_respawn.c"
$CC $CFLAGS -o "$WORK/bench_workers" "$BENCH/bench_workers.c"
set +e
echo "built in $WORK with $($CC --version | head -1)"
SIGHOOK=""   # the signal-hook reader of bench_signal (a Rust program; none: left out)
if want signal; then
    if cargo build --release --quiet --locked --manifest-path "$BENCH/sighook/Cargo.toml" \
            --target-dir "$BENCH/sighook/target"; then
        SIGHOOK="$BENCH/sighook/target/release/sighook-reader"
        echo "built $SIGHOOK with $(cargo --version)"
    else
        target "signal-hook reader built" 0 "cargo build of tests/bench/sighook failed"
    fi
fi

# ---------------------------------------------------------------- 1. footprint
if want footprint; then
    hdr "1. footprint (stripped shared library, dynamic deps)"
    footprint() { # footprint NAME PATH
        local f="$WORK/$1.stripped"
        cp -L "$2" "$f" && strip --strip-unneeded "$f"
        local sz deps
        sz=$(stat -c %s "$f")
        deps=$(ldd "$2" | awk '{print $1}' | grep -v '^linux-vdso' | tr '\n' ' ')
        printf '%-16s %8d bytes stripped  (%s)  deps: %s\n' "$1" "$sz" "$(readlink -f "$2")" "$deps"
        echo "$sz" > "$WORK/$1.size"
    }
    DK_SO="$DKLIB/libdaemonkit.so"
    LD_SO="$(ls /usr/lib/*/libdaemon.so.0 2>/dev/null | head -1)"
    BSD_SO="$(ls /usr/lib/*/libbsd.so.0 2>/dev/null | head -1)"
    footprint libdaemonkit "$DK_SO"
    [ -n "$LD_SO" ] && footprint libdaemon "$LD_SO"
    [ -n "$BSD_SO" ] && footprint libbsd "$BSD_SO"
    DKS=$(cat "$WORK/libdaemonkit.size")
    [ -n "$LD_SO" ] && echo "ratio libdaemonkit/libdaemon = $(ratio "$DKS" "$(cat "$WORK/libdaemon.size")")"
    [ -n "$BSD_SO" ] && echo "ratio libdaemonkit/libbsd    = $(ratio "$DKS" "$(cat "$WORK/libbsd.size")")"
    target "stripped libdaemonkit.so <= 64 KiB" "$([ "$DKS" -le 65536 ] && echo 1 || echo 0)" "$DKS bytes"
fi

# ---------------------------------------------------------------- 2. launch to ready
if want launch; then
    hdr "2. launch to ready (fork+exec launcher -> launcher exits 0 after the daemon's ready; 300 each, interleaved)"
    "$WORK/bench_launch" 300 "$WORK/launch_dk" "$WORK/launch_ld" | tee "$WORK/launch.txt"
    m_dk=$(awk '/launch launch_dk/ {sub("median_us=","",$4); print $4}' "$WORK/launch.txt")
    m_ld=$(awk '/launch launch_ld/ {sub("median_us=","",$4); print $4}' "$WORK/launch.txt")
    p_dk=$(awk '/launch launch_dk/ {sub("p99_us=","",$5); print $5}' "$WORK/launch.txt")
    p_ld=$(awk '/launch launch_ld/ {sub("p99_us=","",$5); print $5}' "$WORK/launch.txt")
    echo "ratio libdaemonkit/libdaemon: median $(ratio "$m_dk" "$m_ld")  p99 $(ratio "$p_dk" "$p_ld")"
    grep -q 'launch failures=0' "$WORK/launch.txt"; target "every launch reported ready" "$([ $? = 0 ] && echo 1 || echo 0)" "$(grep failures "$WORK/launch.txt")"
fi

# ---------------------------------------------------------------- 2b. launch with a large heap
if want heap; then
    HEAP_ROUNDS="${HEAP_ROUNDS:-9}"
    hdr "2b. launch to ready with a touched heap of 10 MiB, 512 MiB, 2 GiB (daemonkit, libdaemon, two plain forks; ${HEAP_ROUNDS} rounds, order rotated)"
    "$WORK/bench_heap" "$HEAP_ROUNDS" 10 512 2048 | tee "$WORK/heap.txt"
    r2g=$(awk '/2048 MiB ratio/ {sub(",","",$5); print $5}' "$WORK/heap.txt")
    r10=$(awk '/ 10 MiB ratio/ {sub(",","",$5); print $5}' "$WORK/heap.txt")
    note "launch with a 2 GiB heap: daemonkit/libdaemon ${r2g:-n/a} (goal <= 0.60); 10 MiB: ${r10:-n/a} (goal <= 1)"
    grep -q 'FAILED launches' "$WORK/heap.txt"; target "every large-heap launch reported ready" "$([ $? = 0 ] && echo 0 || echo 1)" "bench_heap"
fi

# ---------------------------------------------------------------- 3. signals
if want signal; then
    hdr "3. signal delivery latency (kill -> returned by the reader; 10000 rounds per reader, readers interleaved, order shuffled per cycle)"
    for cpus in "0 0" "0 1"; do
        [ "$(nproc)" -lt 2 ] && [ "$cpus" = "0 1" ] && continue
        "$WORK/bench_signal" ping 10000 $cpus $SIGHOOK | tee "$WORK/sig.txt"
        med() { awk -v m="$1" '$2 == m {sub("median_us=","",$6); print $6}' "$WORK/sig.txt"; }
        p99() { awk -v m="$1" '$2 == m {sub("p99_us=","",$7); print $7}' "$WORK/sig.txt"; }
        echo "ratios (cpus sender,reader = ${cpus/ /,}): dk/ld median $(ratio "$(med dk)" "$(med ld)") p99 $(ratio "$(p99 dk)" "$(p99 ld)");" \
             "dk/signalfd median $(ratio "$(med dk)" "$(med sfd)") p99 $(ratio "$(p99 dk)" "$(p99 sfd)");" \
             "dk/signal-hook median $(ratio "$(med dk)" "$(med sh)") p99 $(ratio "$(p99 dk)" "$(p99 sh)")"
    done
    echo "-- where the time goes: each path's own cost, one process signalling itself (ns per signal)"
    "$WORK/bench_signal_path" self 1000 0
    echo "-- where the time goes: ping-pong with timestamps inside the readers${DK_BEFORE_LIB:+ (dk_before: $DK_BEFORE_LIB)}"
    for cpus in "0 0" "0 1"; do
        [ "$(nproc)" -lt 2 ] && [ "$cpus" = "0 1" ] && continue
        "$WORK/bench_signal_path" ping 10000 $cpus | tee "$WORK/path.txt"
        pmed() { awk -v m="$1" '$2 == m { for (i = 3; i <= NF; i++) if ($i ~ /^median_us=/) { sub("median_us=", "", $i); print $i } }' "$WORK/path.txt"; }
        line="ratios (cpus ${cpus/ /,}): dk/signalfd $(ratio "$(pmed dk)" "$(pmed sfd)"); dk_wait/signalfd $(ratio "$(pmed dk_wait)" "$(pmed sfd)"); floor/signalfd $(ratio "$(pmed floor)" "$(pmed sfd)"); copy/signalfd $(ratio "$(pmed copy)" "$(pmed sfd)"); copy_efd/copy $(ratio "$(pmed copy_efd)" "$(pmed copy)"); copy_flag/copy $(ratio "$(pmed copy_flag)" "$(pmed copy)")"
        if [ -n "${DK_BEFORE_LIB:-}" ]; then
            line+="; dk/dk_before $(ratio "$(pmed dk)" "$(pmed dk_before)"); dk_wait/dk_wait_before $(ratio "$(pmed dk_wait)" "$(pmed dk_wait_before)")"
        fi
        echo "$line"
    done
    echo "-- burst: 1000000 mixed USR1/USR2/HUP from a sender process to each reader in turn (dk, sh, ld, sfd; at most 30 s each)"
    "$WORK/bench_signal" burst 1000000 30 $SIGHOOK | tee "$WORK/burst.txt"
    # libdaemonkit's 0 lost kinds is a target; the peers' results are reported beside it
    for m in dk ${SIGHOOK:+sh} ld sfd; do
        line=$(grep "^burst $m " "$WORK/burst.txt")
        sent=$(sed -n 's/.* sent=\([0-9]*\) .*/\1/p' <<< "$line")
        lost=$(sed -n 's/.*kinds_lost=\([0-9]*\).*/\1/p' <<< "$line")
        ok=$([ "$sent" = 1000000 ] && [ "$lost" = 0 ] && echo 1 || echo 0)
        if [ "$m" = dk ]; then
            target "burst dk: all sent, 0 signal kinds lost" "$ok" "sent=${sent:-?} kinds_lost=${lost:-?}"
        else
            note "peer burst $m: $([ "$ok" = 1 ] && echo "all sent, 0 kinds lost" || echo "KINDS LOST or not all sent") (sent=${sent:-?} kinds_lost=${lost:-?})"
        fi
    done
fi

# ---------------------------------------------------------------- 4. restarts under load
if want restarts; then
    hdr "4. restarts under load (wrk -t2 -c16 -H 'Connection: close', ${DUR} s per run, 127.0.0.1)"
    WRK_ARGS=(-t2 -c16 -H 'Connection: close' --timeout 5s)
    # wrk_summary FILE -> "rps non2xx sockerr"
    wrk_summary() {
        local rps non2xx se
        rps=$(awk '/^Requests\/sec:/ {print $2}' "$1")
        non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$1"); non2xx=${non2xx:-0}
        se=$(awk '/Socket errors:/ {gsub(",",""); print $4+$6+$8+$10}' "$1"); se=${se:-0}
        echo "${rps:-0} $non2xx $se"
    }
    # restart_driver PIDFILE DURATION UPGRADE(0/1): a HUP every 2 s, one USR2 halfway (bounded)
    restart_driver() {
        local pf="$1" dur="$2" up="$3" t=0 pid
        while [ "$t" -lt $(( dur - 2 )) ]; do
            sleep 2; t=$((t + 2))
            pid=$(cat "$pf" 2>/dev/null)
            [ -n "$pid" ] || continue
            if [ "$up" = 1 ] && [ "$t" -eq $(( (dur / 2) / 2 * 2 )) ]; then
                echo "  t=${t}s USR2 -> $pid"; kill -USR2 "$pid"
            else
                echo "  t=${t}s HUP  -> $pid"; kill -HUP "$pid"
            fi
        done
    }

    PORT=$(free_port)
    declare -A R
    for run in base restarts; do
        dk_start "$PORT" || { echo "dk-hello did not start"; cat "$WORK/dk.log"; break; }
        curl -s "http://127.0.0.1:$PORT/"
        echo "-- dk-hello -w 4, $run (master $DKPID)"
        if [ "$run" = restarts ]; then restart_driver "$WORK/dk.pid" "$DUR" 1 & DRV=$!; fi
        wrk "${WRK_ARGS[@]}" -d"${DUR}s" "http://127.0.0.1:$PORT/" > "$WORK/wrk-dk-$run.txt" 2>&1
        if [ "$run" = restarts ]; then wait "$DRV"; fi
        sed 's/^/  /' "$WORK/wrk-dk-$run.txt"
        R[dk-$run]=$(wrk_summary "$WORK/wrk-dk-$run.txt")
        echo "  summary: rps non2xx socket_errors = ${R[dk-$run]}; master now $(cat "$WORK/dk.pid")"
        echo "  server log: $(grep -c 'rolling restart done' "$WORK/dk.log") rolling restarts done," \
             "$(grep -c 'upgrade: new generation .* ready' "$WORK/dk.log") upgrades ready," \
             "$(grep -c 'worker .* started' "$WORK/dk.log") workers started," \
             "$(grep -Ec '^(GET|HEAD) ' "$WORK/dk.log") requests logged"
        dk_stop
    done
    read -r b_rps b_n b_s <<< "${R[dk-base]:-0 0 0}"
    read -r r_rps r_n r_s <<< "${R[dk-restarts]:-0 0 0}"
    pct=$(awk -v a="$r_rps" -v b="$b_rps" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print 0 }')
    echo "dk-hello: baseline ${b_rps} req/s (non-2xx $b_n, socket errors $b_s); with HUP/2s + 1 USR2: ${r_rps} req/s (non-2xx $r_n, socket errors $r_s) = ${pct}% of baseline"
    target "dk-hello: zero errors under restarts" "$([ "$r_n" = 0 ] && [ "$r_s" = 0 ] && echo 1 || echo 0)" "non-2xx $r_n, socket errors $r_s"
    target "dk-hello: >= 90% of baseline throughput under restarts" "$(awk -v p="$pct" 'BEGIN{print (p >= 90) ? 1 : 0}')" "${pct}%"

    if [ -z "${SKIP_STARMAN:-}" ] && command -v starman >/dev/null; then
        echo "-- Starman --workers 4 (HUP only: Starman has no USR2 upgrade), ${SDUR} s per run"
        for run in base restarts; do
            SPORT=$(free_port)
            starman --workers 4 --listen "127.0.0.1:$SPORT" --pid "$WORK/starman.pid" --daemonize \
                --error-log "$WORK/starman.log" "$BENCH/hello.psgi" >/dev/null 2>&1
            for i in $(seq 1 100); do [ -s "$WORK/starman.pid" ] && break; sleep 0.1; done
            SPID=$(cat "$WORK/starman.pid" 2>/dev/null); STARTED+=("$SPID")
            wait_http "$SPORT" 15 || { echo "starman did not start"; tail "$WORK/starman.log"; break; }
            echo "-- starman $run (master $SPID)"
            if [ "$run" = restarts ]; then restart_driver "$WORK/starman.pid" "$SDUR" 0 & DRV=$!; fi
            wrk "${WRK_ARGS[@]}" -d"${SDUR}s" "http://127.0.0.1:$SPORT/" > "$WORK/wrk-st-$run.txt" 2>&1
            if [ "$run" = restarts ]; then wait "$DRV"; fi
            sed 's/^/  /' "$WORK/wrk-st-$run.txt"
            R[st-$run]=$(wrk_summary "$WORK/wrk-st-$run.txt")
            echo "  summary: rps non2xx socket_errors = ${R[st-$run]}"
            stop_pid "$SPID"; rm -f "$WORK/starman.pid"
        done
        read -r sb_rps sb_n sb_s <<< "${R[st-base]:-0 0 0}"
        read -r sr_rps sr_n sr_s <<< "${R[st-restarts]:-0 0 0}"
        echo "starman: baseline ${sb_rps} req/s (non-2xx $sb_n, socket errors $sb_s); with HUP/2s: ${sr_rps} req/s (non-2xx $sr_n, socket errors $sr_s) = $(awk -v a="$sr_rps" -v b="$sb_rps" 'BEGIN { if (b > 0) printf "%.1f", 100 * a / b; else print 0 }')% of baseline"
        echo "ratio dk-hello/starman req/s: baseline $(ratio "$b_rps" "$sb_rps"), under restarts $(ratio "$r_rps" "$sr_rps")"
    fi
fi

# ---------------------------------------------------------------- 5. pid file contention
if want pidfile; then
    hdr "5. PID file contention (64 concurrent starters x 200 rounds, dk_pidfile_open)"
    mkdir -p "$WORK/pf"
    "$WORK/bench_pidfile" "$WORK/pf" 64 200 | tee "$WORK/pf.txt"
    bad=$(sed -n 's/.*rounds_not_1=\([0-9]*\).*/\1/p' "$WORK/pf.txt")
    target "exactly 1 winner every round" "$([ "$bad" = 0 ] && echo 1 || echo 0)" "rounds without exactly one winner: ${bad:-?}"
fi

# ---------------------------------------------------------------- 6. respawn
if want respawn && [ -z "${SKIP_RESPAWN:-}" ]; then
    hdr "6. respawn (kill -9 a worker -> a new worker answers; dk-hello -w 4)"
    PORT=$(free_port)
    if dk_start "$PORT"; then
        "$WORK/bench_respawn" "$DKPID" "$PORT" "${RESPAWN_N:-100}" | tee "$WORK/respawn.txt"
        dk_stop
    fi
fi

# ---------------------------------------------------------------- 9. many workers
if want workers; then
    hdr "9. many workers (dk-hello -w N, its master the library's supervisor; gunicorn -w N, sync workers)"
    BW="$WORK/bench_workers"
    WN="${WORKERS_N:-1 16 64 256}"
    WREPS="${WORKERS_REPS:-3}"
    DKH="${WORKERS_DKHELLO:-$ROOT/examples/c/build/dk-hello}"
    echo "dk-hello: $DKH ($(cd "$ROOT" && git log -1 --format='%h %cd' --date=iso 2>/dev/null) in this checkout)"
    GUNICORN=""
    [ -z "${SKIP_GUNICORN:-}" ] && GUNICORN=$(command -v gunicorn || true)
    [ -n "$GUNICORN" ] && echo "gunicorn: $GUNICORN $($GUNICORN --version 2>&1)" \
        || echo "gunicorn: not installed (tests/setup.sh installs Debian's package): its runs are left out"
    WBAD=0      # operations that did not complete (bounded waits ran out)
    WWAKE=""    # "N:wakeups/s" of the dk master when idle
    # dkw_start TAG N: dk-hello -w N on a free port -> DKW_PID DKW_PORT ($WORK/TAG.{pid,log})
    dkw_start() {
        DKW_PORT=$(free_port); : > "$WORK/$1.log"
        local t0 t1
        t0=$(date +%s%N)
        "$DKH" --listen "127.0.0.1:$DKW_PORT" -D --pid "$WORK/$1.pid" \
            -w "$2" --log "$WORK/$1.log" || return 1
        t1=$(date +%s%N)
        DKW_PID=$(cat "$WORK/$1.pid"); STARTED+=("$DKW_PID")
        echo "start dk-hello -w $2: master $DKW_PID, launcher exited (every worker ready) after $(( (t1 - t0) / 1000000 )) ms"
    }
    # gu_start TAG N: gunicorn -w N, daemonized -> GU_PID GU_PORT (bounded wait for N ready)
    gu_start() {
        GU_PORT=$(free_port); : > "$WORK/$1.log"; rm -f "$WORK/$1.pid"
        local i t0 t1
        t0=$(date +%s%N)
        PYTHONDONTWRITEBYTECODE=1 "$GUNICORN" -c "$BENCH/hello_wsgi.py" --pythonpath "$BENCH" -w "$2" -b "127.0.0.1:$GU_PORT" \
            --pid "$WORK/$1.pid" -D --error-log "$WORK/$1.log" hello_wsgi:app || return 1
        for ((i = 0; i < 600; i++)); do [ -s "$WORK/$1.pid" ] && break; sleep 0.05; done
        GU_PID=$(cat "$WORK/$1.pid" 2>/dev/null); STARTED+=("$GU_PID")
        for ((i = 0; i < 1200; i++)); do
            [ "$(grep -c ' ready$' "$WORK/$1.log")" -ge "$2" ] && break; sleep 0.05
        done
        t1=$(date +%s%N)
        echo "start gunicorn -w $2: master $GU_PID, $(grep -c ' ready$' "$WORK/$1.log") workers ready after $(( (t1 - t0) / 1000000 )) ms"
        wait_http "$GU_PORT" 10
    }
    # wroll ARGS...: one bench_workers roll; counts an incomplete one
    wroll() { "$BW" roll "$@" | tee -a "$WORK/workers.txt"; [ "${PIPESTATUS[0]}" = 0 ] || WBAD=$((WBAD + 1)); }
    : > "$WORK/workers.txt"
    for n in $WN; do
        echo "-- N = $n"
        dkw_start dkw "$n" || { echo "dk-hello -w $n did not start"; tail "$WORK/dkw.log"; WBAD=$((WBAD + 1)); continue; }
        GU_PID=""
        if [ -n "$GUNICORN" ]; then gu_start guw "$n" || echo "gunicorn -w $n did not start"; fi
        sleep 1
        # Idle: both pools up, 5 s of nothing (the two measured over the same window).
        "$BW" idle dk-hello "$DKW_PID" 5 > "$WORK/idle-dk.txt" & IDK=$!
        if [ -n "$GU_PID" ]; then "$BW" idle gunicorn "$GU_PID" 5 > "$WORK/idle-gu.txt" & IGU=$!; wait "$IGU"; fi
        wait "$IDK"
        cat "$WORK/idle-dk.txt" ${GU_PID:+"$WORK/idle-gu.txt"} | tee -a "$WORK/workers.txt"
        WWAKE+=" $n:$(sed -n 's/.*wakeups_per_s=\([0-9.]*\).*/\1/p' "$WORK/idle-dk.txt")"
        # Rolling restarts, interleaved: dk-hello, gunicorn, dk-hello, ...
        for ((r = 1; r <= WREPS; r++)); do
            wroll hup dk-hello "$DKW_PID" "$DKW_PORT" "$WORK/dkw.log" "$n" "$WORK/dkw.pid"
            [ -n "$GU_PID" ] && wroll hup gunicorn "$GU_PID" "$GU_PORT" "$WORK/guw.log" "$n" "$WORK/guw.pid"
        done
        [ -n "$GU_PID" ] && stop_pid "$GU_PID"
        # USR2 upgrades: each new master is the next one's old master.
        for ((r = 1; r <= WREPS; r++)); do
            wroll usr2 dk-hello "$DKW_PID" "$DKW_PORT" "$WORK/dkw.log" "$n" "$WORK/dkw.pid"
            DKW_PID=$(cat "$WORK/dkw.pid"); STARTED+=("$DKW_PID")
        done
        stop_pid "$DKW_PID"
        # TTIN from 1 to N (a fresh master each time).
        if [ "$n" -gt 1 ]; then
            for ((r = 1; r <= WREPS; r++)); do
                dkw_start dkt 1 > /dev/null || { WBAD=$((WBAD + 1)); break; }
                wroll ttin dk-hello "$DKW_PID" "$DKW_PORT" "$WORK/dkt.log" "$n" "$WORK/dkt.pid"
                stop_pid "$DKW_PID"
            done
        fi
    done
    # Respawn: -w 4 and -w 256 side by side, kills taking turns.
    if dkw_start dkr4 4 && R4=$DKW_PID && dkw_start dkr256 256 && R256=$DKW_PID; then
        sleep 1.5
        "$BW" respawn "${WORKERS_RESPAWN:-30}" dk-w4 "$R4" "$WORK/dkr4.log" dk-w256 "$R256" "$WORK/dkr256.log" \
            | tee -a "$WORK/workers.txt" || WBAD=$((WBAD + 1))
    else
        WBAD=$((WBAD + 1))
    fi
    stop_pid "${R4:-}"; stop_pid "${R256:-}"
    echo "-- medians (ms) over the runs above"
    awk '$1 == "workers" {
            key = $2 " " $3 " " $4; split($6, a, "="); v[key] = v[key] " " a[2]; split($8, c, "="); cpu[key] = cpu[key] " " c[2]; order[key] = ++k
         }
         function med(s,   x, n, i, j, t) { n = split(s, x, " "); for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] + 0 < x[i] + 0) { t = x[i]; x[i] = x[j]; x[j] = t }
                                        return n ? x[int((n + 1) / 2)] : -1 }
         END { for (key in v) printf "%-26s done_ms median %8.1f  (runs:%s)  master_cpu_ms median %6.1f\n", key, med(v[key]), v[key], med(cpu[key]) }' \
        "$WORK/workers.txt" | sort -k1,1 -k2,2 -k3,3V
    # rolling HUP: dk-hello / gunicorn
    for n in $WN; do
        d=$(awk -v n="n=$n" '$1 == "workers" && $2 == "hup" && $3 == "dk-hello" && $4 == n {split($6, a, "="); print a[2]}' "$WORK/workers.txt" | sort -n | awk '{x[NR]=$1} END {if (NR) print x[int((NR+1)/2)]}')
        g=$(awk -v n="n=$n" '$1 == "workers" && $2 == "hup" && $3 == "gunicorn" && $4 == n {split($6, a, "="); print a[2]}' "$WORK/workers.txt" | sort -n | awk '{x[NR]=$1} END {if (NR) print x[int((NR+1)/2)]}')
        [ -n "$d" ] && [ -n "$g" ] && echo "ratio rolling HUP dk-hello/gunicorn at N=$n (medians): $(ratio "$d" "$g")"
    done
    idle_ok=1
    for w in $WWAKE; do [ "${w#*:}" = "0.00" ] || idle_ok=0; done
    target "dk-hello master idle: 0 wake-ups/s at every N" "$idle_ok" "N:wake-ups/s =$WWAKE"
    target "many workers: every HUP, TTIN, USR2 and respawn completed" "$([ "$WBAD" = 0 ] && echo 1 || echo 0)" "$WBAD incomplete"
    rr=$(sed -n 's/^respawn ratio .*: \([0-9.]*\)$/\1/p' "$WORK/workers.txt")
    note "respawn kill->ready median, N=256 / N=4: ${rr:-n/a} (goal: within 2x; a timing, so printed, not asserted)"
fi

# ---------------------------------------------------------------- 10. accept balance
if want accept; then
    hdr "10. accept balance: one shared socket vs one SO_REUSEPORT socket per worker slot (dk-hello -w 4 / -w 16)"
    DUR="${ACCEPT_DUR:-10}" REPS="${ACCEPT_REPS:-3}" "$BENCH/bench_accept.sh" | tee "$WORK/accept.txt"
    herr=$(sed -n 's/.*slots errors during HUP: \([0-9]*\).*/\1/p' "$WORK/accept.txt")
    target "accept: --reuseport loses no request during HUP" "$([ "${herr:-x}" = 0 ] && echo 1 || echo 0)" \
        "non-2xx + socket errors in the slots' HUP runs: ${herr:-?}"
    note "accept: $(grep 'slots better on p99' "$WORK/accept.txt")"
fi

hdr "summary"
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "${SUMMARY[@]}"
echo "targets missed: $FAILS"
exit $(( FAILS > 0 ))
