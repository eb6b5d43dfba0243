#!/bin/sh
# The conformance suite's server contract on top of `daemonkit run`: the suite appends its
# flags (-D, --pid, --listen, -w, --log, --user, --group, --nofile, ...) to this command;
# they are mapped to `daemonkit run` options, and the program is the plain LISTEN_FDS
# server tests/support/lfd_http.py.
#   python3 tests/conformance/conformance.py --server tests/support/command-server.sh \
#       --lang command --only daemonize-ready,...
# $DAEMONKIT_BIN overrides the binary (default: target/debug/daemonkit, from
# `cargo build --features cli`), $DAEMONKIT_PYTHON the interpreter (default
# /usr/bin/python3: reachable by nobody for the user-group row).
here=$(cd "$(dirname "$0")" && pwd)
bin=${DAEMONKIT_BIN:-$here/../../target/debug/daemonkit}
n=$#
i=0
while [ "$i" -lt "$n" ]; do
    a=$1
    shift
    i=$((i + 1))
    case $a in
        -D) set -- "$@" --daemonize ;;
        -w) set -- "$@" --workers ;;
        *) set -- "$@" "$a" ;;
    esac
done
exec "$bin" run --no-core --ready delay=300 --graceful-timeout 10 "$@" -- \
    "${DAEMONKIT_PYTHON:-/usr/bin/python3}" "$here/lfd_http.py"
