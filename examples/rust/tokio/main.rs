//! `dk-hello-tokio` — the example server on tokio and hyper, built on `daemonkit::tokio`.
//!
//! ```text
//! dk-hello-tokio [--listen HOST:PORT] [-D|--daemonize] [--pid FILE] [--user USER]
//!                [--group GROUP] [-w|--workers N] [--max-requests N] [--log FILE]
//!                [--nofile N] [--graceful-timeout SECONDS] [--foreground-notify]
//!                [--notify-fd N]
//! ```
//!
//! The same command line, endpoints and process behaviour as the other example servers
//! (docs/EXAMPLE-SERVER.md; `hello from rust-tokio pid N`). HTTP is hyper 1.x's
//! `server::conn::http1` with hyper-util's `TokioIo`: what a Rust developer reaches for when
//! a server needs HTTP/1.1 done right without a framework (axum would sit on the same
//! hyper and add routing this server does not need).
//!
//! The order is the crate guide's, with one rule tokio adds: no runtime before the fork.
//! `main` is a plain `fn` (no `#[tokio::main]`): PID file, listener, daemonize, log, pid,
//! limits, privilege drop — then a current-thread runtime built here for a single process,
//! or `Supervisor::run_tokio`, which builds one in every worker after the fork
//! (`serve.rs`). Every process sleeps in epoll when idle: signals arrive through
//! `AsyncSignals` (the signal pipe on the reactor), no timer runs without a connection.

#![forbid(unsafe_code)]

mod http;
mod serve;
// The startup (options, PID file, listener, daemonize, log, limits, privileges) is the
// blocking example's: one implementation for both Rust servers.
#[path = "../startup.rs"]
mod startup;

pub use startup::Config;
use std::process::ExitCode;

/// The program name used in messages.
pub const NAME: &str = "dk-hello-tokio";

const USAGE: &str = "\
usage: dk-hello-tokio [--listen HOST:PORT] [-D|--daemonize] [--pid FILE]
                      [--user USER] [--group GROUP] [-w|--workers N] [--max-requests N]
                      [--log FILE] [--nofile N] [--graceful-timeout SECONDS]
                      [--foreground-notify] [--notify-fd N]";

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect()
    {
        Ok(v) => v,
        Err(a) => {
            eprintln!("{NAME}: argument {a:?} is not valid UTF-8");
            return ExitCode::from(2);
        }
    };
    match startup::parse_options(args) {
        Ok(cfg) => ExitCode::from(startup::start(cfg, &mut |cfg, listener, pidfile, argv| {
            if cfg.workers == 0 {
                // A single process: its runtime, built now that every fork is behind us.
                match daemonkit::tokio::worker_runtime() {
                    Ok(rt) => {
                        let r = rt.block_on(serve::single(cfg, listener, pidfile, argv));
                        rt.shutdown_background();
                        r
                    }
                    Err(e) => Err(format!("tokio runtime: {e}")),
                }
            } else {
                serve::supervisor(cfg, listener, pidfile, argv)
            }
        })),
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{NAME}: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
