//! `privileges::lookup_user` / `lookup_group` (`--user`/`--group`, `dk_drop_privileges`) with
//! the fuzzed bytes up to the first NUL as the spec.
//!
//! * a numeric spec (decimal, whitespace around allowed) below u32::MAX resolves to that id
//!   (a user without a passwd entry gets gid = uid), and a group spec is never looked up;
//! * a name that resolves gives the passwd entry of that very name;
//! * errors are only the documented ones: `ESRCH` for an unknown user, `ENOENT` for an
//!   unknown group (an empty spec included);
//! * the same spec resolves the same way twice.
#![no_main]

use daemonkit::privileges::{lookup_group, lookup_user, ERR_UNKNOWN_GROUP, ERR_UNKNOWN_USER};
use daemonkit_fuzz::{decimal, errno_name};
use libfuzzer_sys::fuzz_target;
use std::ffi::CStr;

fuzz_target!(|data: &[u8]| {
    let mut owned = data.to_vec();
    owned.push(0);
    let spec = CStr::from_bytes_until_nul(&owned).unwrap();
    let numeric = decimal(spec.to_bytes())
        .filter(|&v| v < u32::MAX as u64)
        .map(|v| v as u32);

    match lookup_user(spec) {
        Ok(u) => {
            let name = CStr::from_bytes_until_nul(&u.name).unwrap().to_bytes();
            match numeric {
                Some(id) => {
                    assert_eq!(u.uid, id, "{spec:?}");
                    if name.is_empty() {
                        assert_eq!(u.gid, id, "{spec:?}: gid of an id without an entry");
                    }
                }
                None => assert_eq!(name, spec.to_bytes(), "{spec:?} resolved to another name"),
            }
            let again = lookup_user(spec).expect("second lookup");
            assert_eq!((again.uid, again.gid, again.name), (u.uid, u.gid, u.name));
        }
        Err(e) => {
            assert_eq!(e.0, ERR_UNKNOWN_USER, "user {spec:?}: {}", errno_name(e.0));
            assert!(numeric.is_none(), "numeric user {spec:?} refused");
        }
    }

    match lookup_group(spec) {
        Ok(gid) => {
            if let Some(id) = numeric {
                assert_eq!(gid, id, "{spec:?}");
            }
            assert_eq!(lookup_group(spec).map_err(|e| e.0), Ok(gid));
        }
        Err(e) => {
            assert_eq!(
                e.0,
                ERR_UNKNOWN_GROUP,
                "group {spec:?}: {}",
                errno_name(e.0)
            );
            assert!(numeric.is_none(), "numeric group {spec:?} refused");
        }
    }
});
