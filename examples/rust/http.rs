//! A deliberately small HTTP/1.1 responder: one request per connection, answered with
//! `Content-Length` and `Connection: close`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Longest request body read (and discarded) so closing does not reset the connection.
const MAX_BODY: u64 = 1 << 20;
/// Longest `/slow` wait.
const MAX_SLOW_MS: u64 = 10 * 60 * 1000;
/// How long a client may take to send its request or read the answer.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves the one request of `stream`, logs it on stdout, closes.
pub fn serve_connection(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let Some((head, body_start)) = read_head(&mut stream) else {
        return;
    };
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target, version) = (first.next(), first.next(), first.next());
    let (status, body) = match (method, target, version) {
        (Some(m), Some(t), Some(v))
            if !m.is_empty() && t.starts_with('/') && v.starts_with("HTTP/") =>
        {
            // Consume a request body so the close is a clean FIN, not a reset.
            let len = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
            let rest = len.saturating_sub(body_start as u64).min(MAX_BODY);
            let _ = io::copy(&mut (&mut stream).take(rest), &mut io::sink());
            route(m, t)
        }
        _ => (400, "bad request\n".to_string()),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    // Logged before answering, so a client that got its answer finds the line in the log.
    log(method.unwrap_or("-"), target.unwrap_or("-"), status);
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

/// Reads up to the end of the request head. Returns the head and how many body bytes were
/// read along with it; `None` when the client closed or sent garbage without a head.
fn read_head(stream: &mut TcpStream) -> Option<(Vec<u8>, usize)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let extra = buf.len() - (end + 4);
            buf.truncate(end);
            return Some((buf, extra));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

/// The endpoints of the contract.
fn route(method: &str, target: &str) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let pid = std::process::id();
    match (method, path) {
        ("GET", "/") => (200, format!("hello from rust pid {pid}\n")),
        ("GET", "/pid") => (200, format!("{pid}\n")),
        ("GET", "/ids") => (200, format!("{}\n", ids())),
        ("GET", "/slow") => {
            let ms = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                .min(MAX_SLOW_MS);
            std::thread::sleep(Duration::from_millis(ms));
            (200, "done\n".to_string())
        }
        _ => (404, "not found\n".to_string()),
    }
}

/// `uid=N gid=N euid=N egid=N groups=N,N…` of this process, from `/proc/self/status`.
fn ids() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> Vec<String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let (uid, gid, groups) = (field("Uid:"), field("Gid:"), field("Groups:"));
    let at = |v: &[String], i: usize| v.get(i).cloned().unwrap_or_else(|| "?".into());
    format!(
        "uid={} gid={} euid={} egid={} groups={}",
        at(&uid, 0),
        at(&gid, 0),
        at(&uid, 1),
        at(&gid, 1),
        groups.join(",")
    )
}

/// The request log line: `METHOD PATH STATUS pid=PID`, flushed at once.
fn log(method: &str, target: &str, status: u16) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{method} {target} {status} pid={}", std::process::id());
    let _ = out.flush();
}
