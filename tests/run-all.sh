#!/usr/bin/env bash
# Every test suite, the way CI runs it (`make test`; `.ci/run` calls this). Installs what a
# fresh machine lacks first (tests/setup.sh), then runs each suite even if an earlier one
# failed, and ends with a line "N passed, N failed" counting suites. Under CI=true a missing
# toolchain is a failure, never a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

bash tests/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0; failures=()
step() {
    local name=$1; shift
    echo
    echo "=== $name: $*"
    local t0=$SECONDS
    if "$@"; then
        passed=$((passed + 1)); echo "=== $name: ok ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1)); failures+=("$name"); echo "=== $name: FAILED ($((SECONDS - t0)) s)"
    fi
}

zig() { python3 -m ziglang "$@"; }
libsize() {
    local so tmp; so=$(readlink -f target/lib/libdaemonkit.so.0); tmp=$(mktemp)
    cp "$so" "$tmp" && strip "$tmp"
    echo "stripped libdaemonkit.so: $(stat -c %s "$tmp") bytes (target: at most 65536)"
    echo "dynamic dependencies: $(ldd "$so" | awk '{print $1}' | tr '\n' ' ')"
    local bad; bad=$(ldd "$so" | grep -v -E 'linux-vdso|libc\.so|ld-linux' || true)
    local und; und=$(nm -D --undefined-only "$so" | awk '$1 == "U"' | grep -v '@GLIBC' || true)
    local size; size=$(stat -c %s "$tmp")
    rm -f "$tmp"
    [ "$size" -le 65536 ] || { echo "stripped size $size bytes is over 64 KiB"; return 1; }
    [ -z "$bad" ] && [ -z "$und" ] || { echo "unexpected: $bad $und"; return 1; }
}

install_check() {
    # make install into a DESTDIR, then build the C quick start with pkg-config against it and
    # check that it loads the installed library. (No `ldd | grep -q` here: under pipefail, grep
    # quitting at the first match can kill ldd with SIGPIPE and fail the step at random.)
    local t rc=1 flags deps; t=$(mktemp -d)
    local pc=(env PKG_CONFIG_PATH="$t/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$t" pkg-config)
    if ! make -s install DESTDIR="$t" PREFIX=/usr/local >/dev/null; then
        echo "make install DESTDIR=$t failed"
    elif ! flags=$("${pc[@]}" --cflags --libs daemonkit); then
        echo "pkg-config cannot find daemonkit in $t/usr/local/lib/pkgconfig"
    elif ! cc -std=c99 -Wall -Werror examples/c/quickstart.c $flags -o "$t/quickstart"; then
        echo "the quick start does not build with pkg-config's flags: $flags"
    elif ! deps=$(LD_LIBRARY_PATH="$t/usr/local/lib" ldd "$t/quickstart"); then
        echo "ldd $t/quickstart failed"
    elif [[ $deps != *"libdaemonkit.so.0 => $t/usr/local/lib/"* ]]; then
        echo "the quick start does not load the installed library:"; echo "$deps"
    else
        echo "pkg-config: $flags"; echo "$deps"
        ls -l "$t/usr/local/lib" "$t/usr/local/include" "$t/usr/local/lib/pkgconfig"
        rc=0
    fi
    rm -rf "$t"; return $rc
}

step "shipped libraries" make -s lib
step "make install + pkg-config" install_check
step "library footprint" libsize
step "rustfmt" cargo fmt --check
step "clippy (std)" cargo clippy --all-targets -- -D warnings
step "clippy (the daemonkit command)" cargo clippy --all-targets --features cli -- -D warnings
step "clippy (no_std core)" cargo clippy --no-default-features --lib -- -D warnings
step "clippy (tokio feature)" cargo clippy --all-targets --features tokio -- -D warnings
step "rustdoc: cargo doc -D warnings (std and tokio)" \
    env RUSTDOCFLAGS="-D warnings" cargo doc --quiet --no-deps --features tokio
step "no_std build" cargo build --quiet --no-default-features --lib
# ---- Packaging (issue 15): ABI, versions and licences, man pages, the crate, make install
# to a prefix (command, Perl dist, Zig consumer), the Debian packages (installed and purged).
step "clippy (header generator)" cargo clippy --quiet -p daemonkit-header -- -D warnings
step "ABI guard: exports == committed list, one version node, glibc <= 2.28, .a only dk_*" tests/abi.sh
step "one version number, licence texts in every package, changelogs" tests/versions.sh
step "man pages generated from the header (man -l) and completions" tests/man.sh
step "crate: cargo package, cargo install, a consumer builds no cbindgen, rust-version" tests/crate.sh
step "make install to a prefix: command, man, Perl dist (N/A, CPAN flow), Zig consumer" tests/install.sh
step "Debian packages: make deb, lintian, dpkg -i, C and Perl against /usr, purge" tests/deb.sh
# ---- end of packaging steps
# tests/faults.rs (fault injection: fork refused, full disks, no /dev/null, readiness timeout,
# upgrade steps killed, TERM ignored) runs here with the other integration tests.
step "cargo test (unit, header, supervisor, processes, fault injection, quick starts)" \
    cargo test -- --skip c_example --skip rust_example --skip tokio_example --skip perl_example --skip zig_example --skip suite_catches
# The conformance suite prints one line per contract row per server: run it uncaptured, one
# server at a time.
step "conformance suite: C (shared, static), Rust, Rust with tokio, Perl, Zig; faulty variants caught" \
    cargo test --test conformance -- --nocapture --test-threads=1
step "doctests that run (std and tokio)" cargo test --doc --features tokio
step "tokio: quickstart-tokio (HUP, USR2, TERM as nobody), no runtime across a fork, AsyncSignals" \
    cargo test --features tokio --test tokio -- --nocapture --test-threads=1
step "C tests (static and shared, header, coverage)" make -s -C tests/c check
step "C tests under valgrind" make -s -C tests/c valgrind
step "Perl binding (prove)" env DAEMONKIT_LIB="$PWD/target/lib/libdaemonkit.so" prove -r bindings/perl/t
step "Zig binding (zig build test)" bash -c 'cd bindings/zig && python3 -m ziglang build test --summary all'
step "Zig binding, shared library" bash -c 'cd bindings/zig && python3 -m ziglang build test -Dshared=true --summary all'
step "Zig example (zig build test)" bash -c 'cd examples/zig && python3 -m ziglang build test --summary all'
# The short fuzz run: every cargo-fuzz target 20 s (tests/fuzz.sh 240 is the long one).
step "fuzzing (short: 6 targets x 20 s)" bash tests/fuzz.sh 20
step "demo (the main job)" make -s demo

echo
[ ${#failures[@]} -eq 0 ] || echo "failed suites: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
