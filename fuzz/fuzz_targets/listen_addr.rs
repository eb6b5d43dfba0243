//! `listen::parse_tcp`: `--listen HOST:PORT`, `[V6]:PORT`, `*:PORT`, `:PORT`,
//! `localhost:PORT`, `dk_listen_tcp`.
//!
//! * `Err` is only `EINVAL`;
//! * `Ok`: the port is the decimal number after the last ':' (digits only, leading zeros
//!   allowed, at most 65535), in network byte order; IPv6 exactly when the host is bracketed;
//!   `*`/empty is 0.0.0.0 and `localhost` 127.0.0.1;
//! * accepted exactly when std's `Ipv4Addr`/`Ipv6Addr` parse the host (both are strict:
//!   dotted quads without leading zeros, RFC 4291 text for IPv6) and the port is valid, with
//!   the same address;
//! * round trip: the parsed address printed canonically parses back to the same address and
//!   port.
#![no_main]

use daemonkit::__fuzz::listen::{parse_tcp, Addr};
use daemonkit_fuzz::errno_name;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address and port of a parse.
fn decode(a: &Addr) -> (IpAddr, u16) {
    match a {
        Addr::V4(s) => {
            assert_eq!(s.sin_family, libc::AF_INET as libc::sa_family_t);
            let ip = Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr));
            (IpAddr::V4(ip), u16::from_be(s.sin_port))
        }
        Addr::V6(s) => {
            assert_eq!(s.sin6_family, libc::AF_INET6 as libc::sa_family_t);
            assert_eq!((s.sin6_flowinfo, s.sin6_scope_id), (0, 0));
            let ip = Ipv6Addr::from(s.sin6_addr.s6_addr);
            (IpAddr::V6(ip), u16::from_be(s.sin6_port))
        }
    }
}

/// The port part as the documentation describes it.
fn port_model(p: &[u8]) -> Option<u16> {
    if p.is_empty() || p.len() > 20 || !p.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = p.iter().fold(0u128, |v, &c| v * 10 + u128::from(c - b'0'));
    u16::try_from(v).ok()
}

fuzz_target!(|data: &[u8]| {
    let split = data.iter().rposition(|&c| c == b':');
    let (host, port) = match split {
        Some(i) => (&data[..i], port_model(&data[i + 1..])),
        None => (data, None),
    };
    let std_host: Option<IpAddr> = std::str::from_utf8(host).ok().and_then(|h| {
        match h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            None => match h {
                "" | "*" => Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                "localhost" => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                _ => h.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            },
        }
    });
    match parse_tcp(data) {
        Err(e) => {
            assert_eq!(e.0, libc::EINVAL, "{data:?}: {}", errno_name(e.0));
            assert!(
                port.is_none() || std_host.is_none(),
                "{:?} refused (std reads {std_host:?} port {port:?})",
                String::from_utf8_lossy(data)
            );
        }
        Ok(a) => {
            let (ip, p) = decode(&a);
            assert_eq!(Some(p), port, "{data:?}");
            assert_eq!(ip.is_ipv6(), host.first() == Some(&b'['), "{data:?}");
            assert_eq!(Some(ip), std_host, "{:?}", String::from_utf8_lossy(data));
            let again = match ip {
                IpAddr::V4(v4) => format!("{v4}:{p}"),
                IpAddr::V6(v6) => format!("[{v6}]:{p}"),
            };
            let b = parse_tcp(again.as_bytes()).expect("canonical form refused");
            assert_eq!(decode(&b), (ip, p), "{again}");
        }
    }
});
