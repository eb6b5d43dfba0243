//! `privileges::lookup_user` / `lookup_group` (`--user`/`--group`, `dk_drop_privileges`) with
//! the fuzzed bytes up to the first NUL as the spec.
//!
//! * a malformed spec (whitespace or control characters anywhere, `:` or `,`, a leading `-`
//!   or `+`, 256 bytes or more) is refused with `EINVAL`, never looked up;
//! * a numeric spec (ASCII digits only) below u32::MAX: a user resolves to that uid only
//!   through a passwd entry (else `ESRCH`: no primary group to guess), a group always
//!   resolves to that gid;
//! * a name that resolves gives the passwd entry of that very name;
//! * errors are only the documented ones: `EINVAL` as above, `ESRCH` for an unknown user,
//!   `ENOENT` for an unknown group (an empty spec included);
//! * the same spec resolves the same way twice.
#![no_main]

use daemonkit::__fuzz::privileges::{
    lookup_group, lookup_user, well_formed, ERR_UNKNOWN_GROUP, ERR_UNKNOWN_USER,
};
use daemonkit_fuzz::errno_name;
use libfuzzer_sys::fuzz_target;
use std::ffi::CStr;

fuzz_target!(|data: &[u8]| {
    let mut owned = data.to_vec();
    owned.push(0);
    let spec = CStr::from_bytes_until_nul(&owned).unwrap();
    let bytes = spec.to_bytes();
    let malformed = !bytes.is_empty() && !well_formed(bytes);
    // The model of well-formedness, checked against the library's own.
    let model = !bytes.is_empty()
        && bytes.len() < 256
        && !matches!(bytes[0], b'-' | b'+')
        && bytes
            .iter()
            .all(|&c| c > b' ' && c != 0x7f && c != b':' && c != b',');
    assert_eq!(
        !malformed,
        model || bytes.is_empty(),
        "well_formed({spec:?})"
    );
    let numeric = (!bytes.is_empty() && bytes.len() <= 20 && bytes.iter().all(u8::is_ascii_digit))
        .then(|| std::str::from_utf8(bytes).ok()?.parse::<u64>().ok())
        .flatten()
        .filter(|&v| v < u32::MAX as u64)
        .map(|v| v as u32);

    match lookup_user(spec) {
        Ok(u) => {
            assert!(!malformed, "malformed user {spec:?} accepted");
            let name = CStr::from_bytes_until_nul(&u.name).unwrap().to_bytes();
            match numeric {
                Some(id) => {
                    assert_eq!(u.uid, id, "{spec:?}");
                    assert!(
                        !name.is_empty(),
                        "{spec:?}: resolved without a passwd entry"
                    );
                }
                None => assert_eq!(name, bytes, "{spec:?} resolved to another name"),
            }
            let again = lookup_user(spec).expect("second lookup");
            assert_eq!((again.uid, again.gid, again.name), (u.uid, u.gid, u.name));
        }
        Err(e) if malformed => {
            assert_eq!(
                e.0,
                libc::EINVAL,
                "malformed user {spec:?}: {}",
                errno_name(e.0)
            )
        }
        Err(e) => {
            assert_eq!(e.0, ERR_UNKNOWN_USER, "user {spec:?}: {}", errno_name(e.0));
        }
    }

    match lookup_group(spec) {
        Ok(gid) => {
            assert!(!malformed, "malformed group {spec:?} accepted");
            if let Some(id) = numeric {
                assert_eq!(gid, id, "{spec:?}");
            }
            assert_eq!(lookup_group(spec).map_err(|e| e.0), Ok(gid));
        }
        Err(e) if malformed => {
            assert_eq!(
                e.0,
                libc::EINVAL,
                "malformed group {spec:?}: {}",
                errno_name(e.0)
            )
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
