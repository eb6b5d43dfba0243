//! Reference models shared by the fuzz targets: written from the documented behaviour, not
//! from daemonkit's code, so that a target compares two independent implementations.

/// The bytes daemonkit trims around numbers: `u8::is_ascii_whitespace` (space, TAB, LF, FF,
/// CR; not VT).
pub fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

/// `s` without leading and trailing [`is_space`] bytes.
pub fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&c| !is_space(c)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&c| !is_space(c))
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// A decimal number as daemonkit reads one from a file or the environment: optional
/// surrounding whitespace, then 1 to 20 ASCII digits (leading zeros allowed) whose value fits
/// in a u64.
pub fn decimal(s: &[u8]) -> Option<u64> {
    let t = trim(s);
    if t.is_empty() || t.len() > 20 || !t.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = t.iter().fold(0u128, |v, &c| v * 10 + u128::from(c - b'0'));
    u64::try_from(v).ok()
}

/// Splits the fuzz input into NUL-separated pieces (no piece contains a NUL, so each can be
/// an argument or an environment value).
pub fn split_nul(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == 0).collect()
}

/// The errno name for assertion messages.
pub fn errno_name(e: i32) -> String {
    format!("{} ({e})", std::io::Error::from_raw_os_error(e))
}
