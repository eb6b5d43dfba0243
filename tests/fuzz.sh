#!/usr/bin/env bash
# Fuzzes daemonkit's parsers with cargo fuzz (libFuzzer, AddressSanitizer): the targets in
# fuzz/fuzz_targets/ (PID file content, LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES, NOTIFY_SOCKET
# addresses, user/group specs, HOST:PORT listen addresses, the daemonkit command's arguments).
#
#   tests/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Builds every target once, then runs each one for SECONDS_PER_TARGET (default 20, the CI
# bound) of its own CPU, at most DK_FUZZ_JOBS (default: 2, or 1 on a single core) at a time,
# and prints per target the CPU seconds, execs, exec/s, corpus size and whether it crashed.
# Exits non-zero when a build fails or a target finds a crash, leak, timeout or OOM (the input
# is kept in fuzz/artifacts/TARGET/; replay it with
# `fuzz/target/<triple>/release/TARGET fuzz/artifacts/TARGET/crash-...`).
#
# The corpus grows in fuzz/corpus/TARGET/ (not committed) from the seeds in fuzz/seeds/TARGET/;
# `rm -rf fuzz/corpus` starts over. The long run in RELIABILITY.md is `tests/fuzz.sh 240`.
#
# Toolchain: cargo fuzz passes -Z flags; this uses the stable toolchain with RUSTC_BOOTSTRAP=1
# and falls back to `+nightly` only when that fails and a nightly is installed. cargo-fuzz is
# installed (`cargo install cargo-fuzz --locked`) when missing. Outside CI a machine that
# cannot get cargo-fuzz or a C++ compiler (libFuzzer is C++) skips; with CI=true it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

secs=${1:-20}
shift || true
case "$secs" in
    '' | *[!0-9]*)
        echo "usage: tests/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
        exit 2
        ;;
esac
all_targets=(pidfile_content listen_env notify_addr user_group listen_addr cli_args)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all_targets[@]}"); fi

ci=false
case "${CI:-}" in true | 1 | yes) ci=true ;; esac
skip() {
    if $ci; then
        echo "fuzz: FAIL: $* (CI=true: not skipping)" >&2
        exit 1
    fi
    echo "fuzz: SKIP: $*"
    exit 0
}

start=$(date +%s)
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz missing; cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked || skip "cannot install cargo-fuzz"
fi
if ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1 &&
    ! command -v clang++ >/dev/null 2>&1; then
    skip "no C++ compiler for libFuzzer (install g++)"
fi
echo "fuzz: $(cargo fuzz --version)"

host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$root/fuzz/target/$host/release
log_dir=$root/fuzz/target/fuzz-logs
mkdir -p "$log_dir"

# One build of every target (release, debug assertions, AddressSanitizer).
build() { (cd fuzz && "$@" fuzz build -O --target "$host" >"$log_dir/build.log" 2>&1); }
toolchain=""
if RUSTC_BOOTSTRAP=1 build cargo; then
    toolchain="stable with RUSTC_BOOTSTRAP=1"
elif [[ $'\n'$(rustup toolchain list 2>/dev/null) == *$'\n'nightly* ]]; then
    echo "fuzz: stable with RUSTC_BOOTSTRAP=1 failed to build; trying +nightly:"
    tail -n 20 "$log_dir/build.log"
    if build cargo +nightly; then toolchain="nightly"; fi
fi
if [ -z "$toolchain" ]; then
    tail -n 40 "$log_dir/build.log"
    echo "fuzz: FAIL: cargo fuzz build failed (log: $log_dir/build.log)" >&2
    exit 1
fi
built=$(date +%s)
echo "fuzz: built the targets with $toolchain, AddressSanitizer, in $((built - start)) s"

jobs=${DK_FUZZ_JOBS:-$(($(nproc) >= 2 ? 2 : 1))}

# Runs one target for $secs seconds; its log, CPU time and exit code go to $log_dir.
run_one() {
    local t=$1 bin=$bin_dir/$1 rc=0
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "fuzz/seeds/$t"
    local TIMEFORMAT='%U %S'
    {
        time timeout --signal=KILL $((secs * 2 + 120)) "$bin" \
            -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
            -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" "fuzz/seeds/$t" \
            >"$log_dir/$t.log" 2>&1
    } 2>"$log_dir/$t.cpu" || rc=$?
    echo "$rc" >"$log_dir/$t.rc"
}

for t in "${targets[@]}"; do
    if [ ! -x "$bin_dir/$t" ]; then
        echo "fuzz: FAIL: no such target '$t' (have: ${all_targets[*]})" >&2
        exit 1
    fi
done
echo "fuzz: running each target for $secs s, $jobs at a time"
running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    run_one "$t" &
    running=$((running + 1))
done
wait

final_stat() { sed -n "s/^stat::$1: *//p" "$log_dir/$2.log" | tail -n 1; }
failed=0
printf '%-16s %8s %12s %9s %7s %6s  %s\n' target cpu_s execs exec/s corpus cov result
for t in "${targets[@]}"; do
    rc=$(cat "$log_dir/$t.rc")
    cpu=$(awk '{printf "%.1f", $1 + $2}' "$log_dir/$t.cpu" 2>/dev/null || echo "?")
    execs=$(final_stat number_of_executed_units "$t")
    rate=$(final_stat average_exec_per_sec "$t")
    last=$(grep -E '^#[0-9]+.*corp: ' "$log_dir/$t.log" | tail -n 1 || true)
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' <<<"$last")
    if [ "$rc" = 0 ]; then
        result="ok, no crash"
    else
        failed=$((failed + 1))
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log_dir/$t.log" | tail -n 1)
        result="CRASH (exit $rc)${art:+: $art}"
    fi
    printf '%-16s %8s %12s %9s %7s %6s  %s\n' "$t" "$cpu" "${execs:-?}" "${rate:-?}" \
        "${corp:-?}" "${cov:-?}" "$result"
done
for t in "${targets[@]}"; do
    if [ "$(cat "$log_dir/$t.rc")" != 0 ]; then
        echo "---- $t ($log_dir/$t.log) ----"
        grep -E -A4 'panicked at|==ERROR|ERROR: libFuzzer|^SUMMARY' "$log_dir/$t.log" | head -n 30
        grep -E '^Base64' "$log_dir/$t.log" || true
    fi
done
total=$(($(date +%s) - start))
if [ "$failed" -gt 0 ]; then
    echo "fuzz: FAIL: $failed of ${#targets[@]} target(s) crashed ($total s in all)" >&2
    exit 1
fi
echo "fuzz: ok: ${#targets[@]} target(s), $secs s each, no crash ($total s in all)"
