#!/usr/bin/env bash
# The crate as crates.io users get it (run by `make test`):
#
#  1. `cargo package`: the file list is what the crate needs to build (src, the committed
#     header) plus README, CHANGELOG and both licence texts -- no bindings,
#     examples or test trees -- and the packaged crate builds on its own (cargo's verify);
#  2. `cargo install` of that packaged crate (what `cargo install daemonkit` does) installs
#     a working `daemonkit` command, with no feature to remember;
#  3. a consumer crate depending on daemonkit (path dependency, default features, offline,
#     its own target dir) builds no cbindgen and no cdylib/staticlib;
#  4. rust-version is true: no locked dependency of a workspace package needs a newer Rust
#     than that package declares.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fail=0
bad() { echo "FAIL: $*"; fail=1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
export CARGO_TARGET_DIR=$root/target/crate-check

# 1. the packaged file list, and the packaged crate builds (cargo package's verify step)
if ! cargo package --quiet --offline --allow-dirty -p daemonkit --list > "$tmp/list" 2> "$tmp/err"; then
    bad "cargo package --list failed:"; cat "$tmp/err"
fi
n=$(wc -l < "$tmp/list")
stray=$(grep -E '^(bindings|examples|tests|fuzz|packaging)/' "$tmp/list" || true)
[ -z "$stray" ] || bad "the crate ships files it does not need: $(echo $stray | head -c 400)"
for f in Cargo.toml src/lib.rs src/bin/daemonkit/main.rs include/daemonkit.h \
         README.md CHANGELOG.md LICENSE-MIT LICENSE-APACHE; do
    grep -qxF "$f" "$tmp/list" || bad "the crate lacks $f"
done
echo "cargo package: $n files ($(grep -c '^src/' "$tmp/list") under src/)"
if cargo package --quiet --offline --allow-dirty -p daemonkit > "$tmp/pkg.log" 2>&1; then
    echo "cargo package: target/crate-check/package/daemonkit-$version.crate builds on its own"
else
    bad "cargo package (verify build) failed:"; tail -20 "$tmp/pkg.log"
fi

# 2. cargo install of the packaged crate installs the command
# Unpacked outside this workspace, as cargo install does with a downloaded crate.
pkgdir=$tmp/daemonkit-$version
tar -xzf "$CARGO_TARGET_DIR/package/daemonkit-$version.crate" -C "$tmp" 2>/dev/null
if [ -d "$pkgdir" ] && cargo install --quiet --offline --locked --path "$pkgdir" --root "$tmp/inst" > "$tmp/inst.log" 2>&1; then
    if out=$("$tmp/inst/bin/daemonkit" --version) && [ "$out" = "daemonkit $version" ]; then
        echo "cargo install: $tmp/inst/bin/daemonkit --version: $out"
    else
        bad "the installed daemonkit --version printed '$out'"
    fi
else
    bad "cargo install --path $pkgdir failed:"; tail -20 "$tmp/inst.log"
fi

# 3. a consumer crate: default features, no cbindgen, no C libraries
mkdir -p "$tmp/consumer/src"
cat > "$tmp/consumer/Cargo.toml" <<EOF
[package]
name = "dk-consumer"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
daemonkit = { path = "$root" }
[workspace]
EOF
cat > "$tmp/consumer/src/main.rs" <<'EOF'
fn main() {
    // Something from the Rust layer, so the library is really linked.
    println!("{}", daemonkit::capi::dk_version());
}
EOF
if (cd "$tmp/consumer" && CARGO_TARGET_DIR=$tmp/consumer/target cargo build --offline > "$tmp/c.log" 2>&1); then
    tree=$(cd "$tmp/consumer" && cargo tree --offline -e normal,build,dev --prefix none --format '{p}' 2>&1 | sed 's/ (.*//' | sort -u)
    built=$(ls "$tmp/consumer/target/debug/deps" "$tmp/consumer/target/debug/build" 2>/dev/null)
    if grep -q cbindgen <<<"$tree$built$(cat "$tmp/c.log")"; then
        bad "a consumer crate builds cbindgen:"; grep cbindgen <<<"$tree"
    elif ls "$tmp/consumer/target/debug/deps" | grep -qE '^libdaemonkit.*\.(so|a)$'; then
        bad "a consumer crate builds libdaemonkit as a cdylib/staticlib"
    else
        echo "consumer crate: cargo tree: $(echo $tree); no cbindgen, daemonkit as an rlib only"
        "$tmp/consumer/target/debug/dk-consumer" > /dev/null || bad "the consumer does not run"
    fi
else
    bad "the consumer crate does not build:"; tail -20 "$tmp/c.log"
fi

# 4. rust-version against the locked dependencies (normal, build and dev: what building
#    and testing the package needs), per workspace package
# cargo metadata reads every locked package, also those only other targets build (r-efi
# for UEFI, through getrandom) that no build here downloaded: fetch them first.
if ! cargo fetch --quiet --locked > "$tmp/fetch.log" 2>&1; then
    bad "cargo fetch --locked failed:"; tail -5 "$tmp/fetch.log"
elif ! cargo metadata --quiet --offline --locked --format-version 1 > "$tmp/meta.json"; then
    bad "cargo metadata failed"
elif ! python3 - "$tmp/meta.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
pkgs = {p["id"]: p for p in m["packages"]}
nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
def ver(v):
    t = tuple(int(x) for x in (v or "0").split("."))
    return t + (0,) * (3 - len(t))
ok = True
for wid in m["workspace_members"]:
    own = pkgs[wid]
    seen, todo, worst = set(), [wid], (None, ())
    first = True
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        for d in nodes[i]["deps"]:
            kinds = {k["kind"] for k in d["dep_kinds"]}
            if not first and kinds == {"dev"}:
                continue  # a dependency's dev-dependencies are not built
            todo.append(d["pkg"])
            rv = ver(pkgs[d["pkg"]].get("rust_version"))
            if rv > worst[1]:
                worst = (pkgs[d["pkg"]]["name"] + " " + pkgs[d["pkg"]]["version"], rv)
        first = False
    declared = ver(own.get("rust_version"))
    need = ".".join(map(str, worst[1][:2])) or "-"
    if worst[1] > declared:
        ok = False
        print(f"FAIL: {own['name']} declares rust-version {own.get('rust_version')}, "
              f"but {worst[0]} needs {need}")
    else:
        print(f"rust-version: {own['name']} {own.get('rust_version')}, "
              f"its locked dependencies need at most {need} ({worst[0]})")
sys.exit(0 if ok else 1)
EOF
then
    fail=1
fi

[ "$fail" -eq 0 ] && echo "crate: ok" || echo "crate: FAILED"
exit "$fail"
