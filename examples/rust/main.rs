//! `dk-hello-rs` — the Rust example server and its control commands, built on daemonkit's
//! idiomatic Rust layer only: safe Rust, no hand-rolled process plumbing.
//!
//! ```text
//! dk-hello-rs start  [--listen HOST:PORT] [-D] [--pid FILE] [--user U] [--group G]
//!                    [-w N] [--max-requests N] [--log FILE] [--nofile N]
//!                    [--graceful-timeout S] [--foreground-notify] [--notify-fd N]
//! dk-hello-rs stop   --pid FILE [--timeout SECS]
//! dk-hello-rs status --pid FILE
//! ```
//!
//! When the first argument starts with `-` (or there is none) it means `start`, so
//! `dk-hello-rs --listen 127.0.0.1:0 -D --pid /run/hello.pid` works too.
//!
//! The startup follows `examples/README.md` step by step: listeners (inherited ones first),
//! PID file, daemonize, log, PID, limits, privileges, SIGPIPE, then a single process or a
//! prefork master. The process behaviour (signals, re-exec, upgrades) is in `serve.rs`, the
//! request handling in `http.rs`, `stop`/`status` in `ctl.rs`.
//!
//! `--notify-fd N` is s6's readiness protocol (the service directory's `notification-fd`
//! names N): the server stays in the foreground and hands fd N to the library, whose
//! `ready()` writes `\n` to it and closes it once we serve (with `-w N`, the master's, once
//! every worker is ready). A re-exec or a new generation does not get the option.

#![forbid(unsafe_code)]

mod ctl;
mod http;
mod serve;
mod startup;

pub use startup::{absolute, seconds, Args, Config};
use std::process::ExitCode;

/// The program name used in messages.
pub const NAME: &str = "dk-hello-rs";

const USAGE: &str = "\
usage: dk-hello-rs [start] [--listen HOST:PORT] [-D|--daemonize] [--pid FILE]
                   [--user USER] [--group GROUP] [-w|--workers N] [--max-requests N]
                   [--log FILE] [--nofile N] [--graceful-timeout SECONDS]
                   [--foreground-notify] [--notify-fd N]
       dk-hello-rs stop --pid FILE [--timeout SECONDS]
       dk-hello-rs status --pid FILE    (exit 0 running, 1 dead with a stale pid file,
                                         3 not running, 4 unknown)";

fn main() -> ExitCode {
    let mut args: Vec<String> = match std::env::args_os()
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
    let cmd = match args.first().map(String::as_str) {
        None => "start".to_string(),
        Some(a) if a.starts_with('-') && a != "-h" && a != "--help" => "start".to_string(),
        Some(_) => args.remove(0),
    };
    let code = match cmd.as_str() {
        "start" => match startup::parse_options(args) {
            Ok(cfg) => startup::start(cfg, &mut |cfg, listener, pidfile, argv| {
                if cfg.workers == 0 {
                    serve::single(cfg, listener, pidfile, argv)
                } else {
                    serve::supervisor(cfg, listener, pidfile, argv)
                }
            }),
            Err(e) if e.is_empty() => {
                println!("{USAGE}");
                0
            }
            Err(e) => {
                eprintln!("{NAME}: {e}\n{USAGE}");
                2
            }
        },
        "stop" => ctl::stop(args),
        "status" => ctl::status(args),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            0
        }
        other => {
            eprintln!("{NAME}: unknown command '{other}'\n{USAGE}");
            2
        }
    };
    ExitCode::from(code)
}
