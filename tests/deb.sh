#!/usr/bin/env bash
# The Debian packages for real (run by `make test`, as root):
#
#  1. `make deb` builds libdaemonkit0, libdaemonkit-dev, daemonkit and libdaemonkit-perl
#     (dpkg-buildpackage, debhelper; dpkg-gensymbols against the committed symbols file)
#     and lintian reports no error;
#  2. `dpkg -i` installs them on this machine; then, with no variable pointing anywhere:
#     the C quick start builds with `pkg-config --cflags --libs daemonkit` against /usr,
#     loads /usr/lib/<triplet>/libdaemonkit.so.0, daemonizes, writes its PID file and stops
#     on TERM; the same statically; a Perl one-liner loads DaemonKit; the command runs; man
#     finds daemonkit(1), dk_pidfile_open(3) and DaemonKit::PidFile(3pm); bash completion
#     loads the command's completion;
#  3. `dpkg --purge` removes them again (also when a check fails: trap), and nothing of
#     them is left: the machine is as before. The packages are installed only between 2
#     and 3, a few seconds.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fail=0
bad() { echo "FAIL: $*"; fail=1; }
PKGS=(daemonkit libdaemonkit-perl libdaemonkit-dev libdaemonkit0)
tmp=$(mktemp -d /tmp/dk-deb-XXXXXX)
chmod 755 "$tmp"
installed=0
qs_pid=
cleanup() {
    [ -n "$qs_pid" ] && kill -KILL "$qs_pid" 2>/dev/null
    if [ "$installed" = 1 ]; then
        dpkg --purge "${PKGS[@]}" > "$tmp/purge.log" 2>&1 || { echo "FAIL: dpkg --purge:"; cat "$tmp/purge.log"; }
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
clean_env=(env -u DAEMONKIT_LIB -u LD_LIBRARY_PATH -u PKG_CONFIG_PATH -u PERL5LIB -u PERL5OPT)

[ "$(id -u)" = 0 ] || { echo "FAIL: installing .debs needs root"; exit 1; }
for p in "${PKGS[@]}"; do
    if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "" ] \
       && [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "unknown ok not-installed" ]; then
        echo "FAIL: $p is already installed (or half-removed) on this machine; not touching it"
        exit 1
    fi
done

# 1. build (+ lintian)
if ! make -s deb > "$tmp/deb.log" 2>&1; then
    bad "make deb failed:"; tail -40 "$tmp/deb.log"; exit 1
fi
grep -E '^(  \S+\.deb:|lintian:)' "$tmp/deb.log"
debs=()
for p in "${PKGS[@]}"; do
    f=$(ls target/deb/${p}_"$version"_*.deb 2>/dev/null | head -1)
    [ -n "$f" ] && debs+=("$f") || bad "make deb did not build $p"
done
[ "$fail" -eq 0 ] || exit 1

# 2. install and use
installed=1
if ! dpkg -i "${debs[@]}" > "$tmp/install.log" 2>&1; then
    bad "dpkg -i:"; cat "$tmp/install.log"; exit 1
fi
echo "installed: $(dpkg-query -W -f='${Package} ${Version}, ' "${PKGS[@]}")"

if flags=$("${clean_env[@]}" pkg-config --cflags --libs daemonkit 2>&1) \
   && "${clean_env[@]}" cc -std=c99 -Wall -Wextra -Werror examples/c/quickstart.c $flags -o "$tmp/quickstart" 2> "$tmp/cc.log"; then
    deps=$(ldd "$tmp/quickstart" 2>&1 || true)
    if [[ $deps != *"libdaemonkit.so.0 => /usr/lib/$multiarch/libdaemonkit.so.0"* && $deps != *"libdaemonkit.so.0 => /lib/$multiarch/libdaemonkit.so.0"* ]]; then
        bad "the quick start does not load /usr/lib/$multiarch/libdaemonkit.so.0: $deps"
    else
        echo "C quick start: cc quickstart.c $flags; loads $(grep -o 'libdaemonkit.so.0 => [^ ]*' <<<"$deps")"
    fi
    # run it: daemonize, PID file, TERM
    pidfile=$tmp/qs.pid
    if (cd / && "${clean_env[@]}" "$tmp/quickstart" "$pidfile" < /dev/null > "$tmp/qs.out" 2>&1); then
        qs_pid=$(cat "$pidfile" 2>/dev/null)
        if [ -n "$qs_pid" ] && kill -0 "$qs_pid" 2>/dev/null && grep -q libdaemonkit "/proc/$qs_pid/maps"; then
            kill -TERM "$qs_pid"
            for _ in $(seq 100); do [ -e "$pidfile" ] || break; sleep 0.05; done
            if [ -e "$pidfile" ]; then bad "the quick start daemon did not remove its PID file on TERM"
            else echo "C quick start: daemonized (pid $qs_pid), PID file written, stopped on TERM"; qs_pid=; fi
        else
            bad "the quick start daemon is not running from $pidfile ($(cat "$tmp/qs.out"))"
        fi
    else
        bad "the quick start launcher failed: $(cat "$tmp/qs.out")"
    fi
    if sflags=$("${clean_env[@]}" pkg-config --static --libs daemonkit) \
       && "${clean_env[@]}" cc -std=c99 -Wall -Werror examples/c/quickstart.c $("${clean_env[@]}" pkg-config --cflags daemonkit) \
            -Wl,-Bstatic -ldaemonkit -Wl,-Bdynamic ${sflags/-ldaemonkit/} -o "$tmp/quickstart-static" 2> "$tmp/cc.log" \
       && ! ldd "$tmp/quickstart-static" | grep -q libdaemonkit; then
        echo "C quick start, static: cc ... -Wl,-Bstatic -ldaemonkit $(echo ${sflags/-ldaemonkit/}) (no libdaemonkit.so needed)"
    else
        bad "static link against /usr/lib/$multiarch/libdaemonkit.a: $(cat "$tmp/cc.log")"
    fi
else
    bad "the quick start does not build against /usr: $flags $(cat "$tmp/cc.log" 2>/dev/null)"
fi

if out=$(cd / && "${clean_env[@]}" perl -MDaemonKit -e \
        'printf "DaemonKit %s, libdaemonkit %s, loaded from %s\n", $DaemonKit::VERSION, DaemonKit::version_string(), DaemonKit::FFI::loaded()' 2>&1) \
   && [[ $out == "DaemonKit $version, libdaemonkit $version, loaded from "* ]]; then
    echo "Perl one-liner, no variable set: $out"
else
    bad "perl -MDaemonKit: $out"
fi

out=$("${clean_env[@]}" /usr/bin/daemonkit --version 2>&1)
[ "$out" = "daemonkit $version" ] && echo "command: /usr/bin/daemonkit --version: $out" || bad "/usr/bin/daemonkit --version: $out"
for page in "1 daemonkit" "3 daemonkit" "3 dk_pidfile_open" "3 dk_supervisor" "3 DaemonKit::PidFile"; do
    set -- $page
    if f=$(man -w "$1" "$2" 2>&1) && MANWIDTH=80 man "$1" "$2" 2>/dev/null | grep -q "$2"; then
        echo "man $1 $2: $f"
    else
        bad "man $1 $2: $f"
    fi
done
if out=$(bash --norc --noprofile -c 'source /usr/share/bash-completion/bash_completion; _completion_loader daemonkit 2>/dev/null || __load_completion daemonkit; complete -p daemonkit' 2>&1) \
   && [[ $out == *"_daemonkit daemonkit"* ]]; then
    echo "bash completion: $out"
else
    bad "bash completion for daemonkit not loaded: $out"
fi

# 3. purge
dpkg --purge "${PKGS[@]}" > "$tmp/purge.log" 2>&1 || bad "dpkg --purge: $(cat "$tmp/purge.log")"
installed=0
left=$(dpkg-query -W -f='${Package} ${Status}\n' "${PKGS[@]}" 2>/dev/null | grep -v 'not-installed' || true)
[ -z "$left" ] || bad "still known to dpkg after --purge: $left"
for f in /usr/lib/$multiarch/libdaemonkit.so.0 /usr/include/daemonkit.h /usr/bin/daemonkit /usr/share/perl5/DaemonKit.pm; do
    [ ! -e "$f" ] || bad "$f is left after --purge"
done
if ldconfig -p | grep -q libdaemonkit; then bad "ld.so.cache still lists libdaemonkit"; fi
[ "$fail" -eq 0 ] && echo "purged: ${PKGS[*]}; nothing left"

[ "$fail" -eq 0 ] && echo "Debian packages: ok" || echo "Debian packages: FAILED"
exit "$fail"
