#!/usr/bin/env bash
# Man pages and completions (run by `make test`):
#
#  1. `make man` generates daemonkit(1) and, from include/daemonkit.h, daemonkit(3), one page
#     per C API area and a link per function; every function of the header has a page that
#     documents it, and every page renders with `man -l` without a warning;
#  2. daemonkit(1) names every option that `daemonkit help COMMAND` lists, and nothing else;
#  3. the bash completion offers every command and every option (run for real in bash), and
#     the zsh completion names every option.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export MANWIDTH=100 LC_ALL=C.UTF-8

make -s man command || { echo "FAIL: make man command"; exit 1; }
bin=target/release/daemonkit
man1=target/man/man1/daemonkit.1
man3=target/man/man3

# 1. the C API pages
functions=$(tr '\n' ' ' < include/daemonkit.h | grep -oE '[a-z_0-9*]+ \**dk_[a-z_0-9]+\(' \
            | grep -oE 'dk_[a-z_0-9]+' | sort -u)
n=0 pages=0
for f in $functions; do
    n=$((n + 1))
    page=$man3/$f.3
    if [ ! -f "$page" ]; then bad "no man page for $f"; continue; fi
    if head -1 "$page" | grep -q '^\.so '; then
        page=$man3/$(sed -n 's|^\.so man3/||p' "$page")
        [ -f "$page" ] || { bad "$f.3 links to a missing page"; continue; }
    fi
    # the function's own section, and its prototype in the synopsis
    man -l "$page" 2>/dev/null > "$tmp/r"
    grep -q "^   $f()" "$tmp/r" || bad "$page has no section for $f()"
    grep -qE "^ +[a-z].* \**$f\(" "$tmp/r" || bad "$page has no prototype of $f"
done
for page in "$man1" "$man3"/*.3; do
    head -1 "$page" | grep -q '^\.so ' && continue
    pages=$((pages + 1))
    if ! man --warnings -l "$page" > "$tmp/r" 2> "$tmp/w" || [ -s "$tmp/w" ] || [ ! -s "$tmp/r" ]; then
        bad "man -l $page: $(head -3 "$tmp/w")"
    fi
done
man -l "$man3/daemonkit.3" 2>/dev/null > "$tmp/overview"
for area in $(ls "$man3" | sed -n 's/^\(dk_[a-z]*\)\.3$/\1/p'); do
    head -1 "$man3/$area.3" | grep -q '^\.so ' && continue
    grep -q "$area(3)" "$tmp/overview" || bad "daemonkit(3) does not list $area(3)"
done
grep -q 'dk_pidfile_open(path, 0, 0, &pf, &other)' "$tmp/overview" \
    || bad "daemonkit(3) lacks the quick start (examples/c/quickstart.c)"
echo "man3: $n functions of include/daemonkit.h documented; $pages pages render with man -l, no warning"

# 2. daemonkit(1) against the command's own help
{ "$bin" help; for c in run start stop restart reload status; do "$bin" help "$c"; done; } > "$tmp/help" 2>&1
help_opts=$(grep -oE '(^|[ ,[])--?[a-zA-Z][a-zA-Z-]*' "$tmp/help" | grep -oE -- '--?[a-zA-Z][a-zA-Z-]*' | sort -u)
man -l "$man1" 2>/dev/null > "$tmp/man1"
man_opts=$(sed -n '/^OPTIONS/,/^SIGNALS/p' "$tmp/man1" | grep -oE -- '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' \
           | grep -oE -- '--?[a-zA-Z][a-zA-Z-]*' | sort -u)
missing=$(comm -23 <(echo "$help_opts") <(echo "$man_opts") | grep -vxE -- '--version' || true)
extra=$(comm -13 <(echo "$help_opts") <(echo "$man_opts") \
        | grep -vxE -- '-h|--help|--version|-l|-u|-g|-e|--pidfile' || true)
[ -z "$missing" ] || bad "daemonkit(1) lacks options of 'daemonkit help': $(echo $missing)"
[ -z "$extra" ] || bad "daemonkit(1) documents options 'daemonkit help' does not list: $(echo $extra)"
for c in run start stop restart reload status help; do
    grep -qE "^ +daemonkit $c" "$tmp/man1" || bad "daemonkit(1) has no synopsis for '$c'"
done
# the short aliases the parser accepts are documented too (src/bin/daemonkit/args.rs)
for o in -D -l -w -u -g -e --pidfile; do
    grep -q -- "\"$o\"" src/bin/daemonkit/args.rs || bad "daemonkit(1) documents $o, which the parser does not accept"
done
echo "man1: daemonkit(1) documents the $(echo "$help_opts" | wc -l) options of 'daemonkit help'"

# 3. completions
cat > "$tmp/complete.bash" <<'EOF'
source packaging/completions/daemonkit.bash
complete_words() { # prints what completing the last word offers
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
    _daemonkit daemonkit "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
    printf '%s\n' "${COMPREPLY[@]}"
}
echo "commands: $(complete_words daemonkit '' | tr '\n' ' ')"
echo "run: $(complete_words daemonkit run - | tr '\n' ' ')"
echo "stop: $(complete_words daemonkit stop - | tr '\n' ' ')"
echo "status: $(complete_words daemonkit status - | tr '\n' ' ')"
echo "ready: $(complete_words daemonkit run --ready '' | tr '\n' ' ')"
echo "user: $(complete_words daemonkit run --user ro | tr '\n' ' ')"
echo "program: $(complete_words daemonkit run -- tru | tr '\n' ' ')"
EOF
if out=$(bash --norc --noprofile "$tmp/complete.bash" 2>&1); then
    got() { sed -n "s/^$1: //p" <<<"$out"; }
    has() { [[ " $1 " == *" $2 "* ]]; }   # word $2 in the space-separated list $1
    for c in run start stop restart reload status help; do
        has "$(got commands)" "$c" || bad "bash completion does not offer the command $c"
    done
    run_help=$(sed -n '/^usage: daemonkit run/,/^Signals/p' "$tmp/help" | grep -oE -- '(^|[ ,])--?[a-zA-Z][a-zA-Z-]*' | grep -oE -- '--?[a-zA-Z][a-zA-Z-]*' | sort -u)
    for o in $run_help; do
        has "$(got run)" "$o" || bad "bash completion of 'run -' lacks $o"
        grep -qE -- "(\\{|,|')$o(\\}|,|\\[)" packaging/completions/_daemonkit || bad "zsh completion lacks $o"
    done
    has "$(got stop)" --timeout || bad "bash completion of 'stop -' lacks --timeout"
    has "$(got status)" --pid || bad "bash completion of 'status -' lacks --pid"
    [ "$(got ready)" = "fd notify delay= " ] || bad "bash completion of --ready: '$(got ready)'"
    has "$(got user)" root || bad "bash completion of --user does not offer root"
    has "$(got program)" true || bad "bash completion after -- does not offer commands"
    echo "bash completion: commands: $(got commands); run: $(echo "$run_help" | wc -l) options"
else
    bad "the bash completion fails: $out"
fi
zsh -n packaging/completions/_daemonkit || bad "zsh -n packaging/completions/_daemonkit"

[ "$fail" -eq 0 ] && echo "man pages and completions: ok" || echo "man pages and completions: FAILED"
exit "$fail"
