//! The endpoints of the contract, served by hyper: one request per connection (keep-alive
//! off, as in the other example servers: `Connection: close`, then the connection ends), a
//! 30 s bound on reading the request head, `/slow` on a tokio timer so it blocks nobody.

use crate::serve::LANG;
use daemonkit::tokio::Graceful;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io::Write;
use std::time::Duration;
use tokio::net::TcpStream;

/// Longest `/slow` wait.
const MAX_SLOW_MS: u64 = 10 * 60 * 1000;
/// How long a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long, once stopping, a connection without a request yet may take to send one.
const IDLE_GRACE: Duration = Duration::from_secs(2);

/// Serves one connection until it ends; on [`Graceful::shutdown`] hyper finishes the
/// request in progress (or closes a connection that has not sent one) and ends it.
pub async fn connection(stream: TcpStream, graceful: Graceful) {
    let conn = http1::Builder::new()
        .keep_alive(false)
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service_fn(handle));
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = graceful.stopped() => {}
    }
    // Stopping. A request being served is finished (keep-alive is off: it is the last). A
    // connection accepted before the stop whose request has not arrived yet gets a moment
    // to send it (hyper's graceful_shutdown would close it at once: a failed request for a
    // client that connected in time), then is closed rather than holding the drain.
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = tokio::time::sleep(IDLE_GRACE) => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let target = req
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let pid = std::process::id();
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => (StatusCode::OK, format!("hello from {LANG} pid {pid}\n")),
        (&Method::GET, "/pid") => (StatusCode::OK, format!("{pid}\n")),
        (&Method::GET, "/ids") => (StatusCode::OK, format!("{}\n", ids())),
        (&Method::GET, "/slow") => {
            let ms = req
                .uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("ms="))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                .min(MAX_SLOW_MS);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            (StatusCode::OK, "done\n".to_string())
        }
        _ => (StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    // Logged before answering, so a client that got its answer finds the line in the log.
    log(req.method().as_str(), &target, status.as_u16());
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    Ok(resp)
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
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{method} {target} {status} pid={}", std::process::id());
    let _ = out.flush();
}
