//! Sets the shared library's soname for a cdylib built with `cargo rustc --crate-type cdylib`
//! (`make lib` links the shipped `.so` itself, in packaging/link-capi.sh, with the same
//! soname and a version script).
//!
//! The C header is not generated here: `packaging/header-gen` (`cargo run -p
//! daemonkit-header`) writes the committed `include/daemonkit.h`, and `tests/header.rs` fails
//! when it is stale, so crates depending on daemonkit never compile cbindgen.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DAEMONKIT_UPDATE_HEADER");
    if std::env::var_os("DAEMONKIT_UPDATE_HEADER").is_some() {
        println!(
            "cargo:warning=DAEMONKIT_UPDATE_HEADER is no longer read by the build: run \
             `cargo run -p daemonkit-header` to regenerate include/daemonkit.h"
        );
    }
    // The soname C users link against; bumped only on an ABI break.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdaemonkit.so.0");
}
