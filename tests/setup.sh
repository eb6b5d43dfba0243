#!/usr/bin/env bash
# Install the toolchains daemonkit's tests and bindings need on a fresh
# Debian 12 (bookworm) machine. Idempotent: installs only what is missing,
# and runs `apt-get update` only when something must be installed.
# Prints one line per thing it found or installed.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PIP_ROOT_USER_ACTION=ignore

# Newest 0.17.x of PyPI's `ziglang` (checked with `pip index versions ziglang`).
ZIG_VERSION="${DK_ZIG_VERSION:-0.17.1}"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Debian packages we need. `starman` pulls in libplack-perl; HTTP::Parser::XS
# (libhttp-parser-xs-perl) is the fast request parser the Perl example may use; g++ builds
# libFuzzer (C++) for tests/fuzz.sh.
APT_PKGS=(
    libffi-platypus-perl
    libio-async-perl
    libhttp-parser-xs-perl
    pkg-config
    valgrind
    wrk
    libdaemon-dev
    libbsd-dev
    starman
    curl
    g++
)
# Packaging (issue 15): `make deb` and tests/deb.sh (debhelper, dpkg-dev, lintian), the man
# page checks (man-db), the Perl dist's Makefile.PL (libffi-checklib-perl), the completion
# checks (bash-completion, zsh), the .a/.so link and ABI checks (binutils).
APT_PKGS+=(
    debhelper
    dpkg-dev
    lintian
    man-db
    libffi-checklib-perl
    bash-completion
    zsh
    binutils
)
# Real servers, supervisors and init (issue 14): Server::Starter's start_server beside
# Starman, gunicorn and uvicorn (LISTEN_FDS / --fd), s6, runit and supervisord, and
# util-linux's unshare/nsenter for the PID-1 tests.
APT_PKGS+=(
    libserver-starter-perl
    gunicorn
    uvicorn
    s6
    runit
    supervisor
    util-linux
)

is_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

missing=()
for p in "${APT_PKGS[@]}"; do
    if is_installed "$p"; then
        echo "found: $p"
    else
        missing+=("$p")
    fi
done

# systemd-socket-activate ships in the `systemd` package on bookworm.
if command -v systemd-socket-activate >/dev/null 2>&1; then
    echo "found: systemd-socket-activate ($(command -v systemd-socket-activate))"
else
    missing+=(systemd)
fi

if [ "${#missing[@]}" -gt 0 ]; then
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    # No service may be started by a package's maintainer scripts (supervisor's would start
    # a supervisord, runit's a runsvdir): the tests start their own, and stop them.
    rc_d=/usr/sbin/policy-rc.d
    made_rc_d=""
    if [ ! -e "$rc_d" ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$rc_d" >/dev/null && $SUDO chmod 755 "$rc_d"
        made_rc_d=1
    fi
    trap 'rm -f "$log"; [ -z "$made_rc_d" ] || $SUDO rm -f "$rc_d"' EXIT
    # Quiet on success; show apt's output if it fails.
    if ! { $SUDO apt-get update -qq && \
           $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup.sh: apt-get failed installing: ${missing[*]}" >&2
        exit 1
    fi
    for p in "${missing[@]}"; do
        echo "installed: $p"
    done
fi

# Zig from PyPI (`python3 -m ziglang ...`).
have_zig="$(python3 -m ziglang version 2>/dev/null || true)"
if [ "$have_zig" = "$ZIG_VERSION" ]; then
    echo "found: zig $have_zig (python3 -m ziglang)"
else
    python3 -m pip install --quiet "ziglang==${ZIG_VERSION}"
    have_zig="$(python3 -m ziglang version)"
    if [ "$have_zig" != "$ZIG_VERSION" ]; then
        echo "setup.sh: expected zig $ZIG_VERSION, got '$have_zig'" >&2
        exit 1
    fi
    echo "installed: zig $have_zig (pip ziglang==${ZIG_VERSION})"
fi

# cargo-fuzz for tests/fuzz.sh (libFuzzer targets in fuzz/; built with the stable toolchain
# and RUSTC_BOOTSTRAP=1).
if have_fuzz="$(cargo fuzz --version 2>/dev/null)"; then
    echo "found: $have_fuzz"
else
    cargo install cargo-fuzz --locked --quiet
    echo "installed: $(cargo fuzz --version)"
fi
