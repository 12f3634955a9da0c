//! `berth`: a docker-compatible command line over Berth's engine. Every command goes
//! through the Engine API (`client`): to the engine serving the store, or to one it starts
//! in-process for as long as it runs, so no daemon is needed.
//!
//! Architecture invariant: this binary parses arguments and renders output; every
//! decision about images lives in the engine crates.

mod cli;
mod client;
mod commands;
mod compose;
mod format;
mod lists;
mod progress;
mod render;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

/// Logs at info (RUST_LOG overrides) to stderr, for the long-lived processes: the daemon,
/// a machine's relay (its relay.log) and a guest's engine (the console, without colours).
pub(crate) fn log_to_stderr(ansi: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}

/// This binary, as a machine's guest starts it again (its engine, the shims).
fn guest_binary() -> std::path::PathBuf {
    std::env::current_exe().unwrap_or_else(|_| "/usr/bin/berth".into())
}

/// The arguments as Berth reads them: under the name `docker` (Berth's docker command,
/// `berth system docker-command`) they are Berth's own, so `docker compose up` is
/// `berth compose up`; under `docker-compose`, `berth compose`'s.
fn arguments() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let invoked = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if invoked == "docker-compose" {
        args.insert(1, "compose".into());
    }
    args
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse_from(arguments()) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                // docker exits 125 when the command line itself is wrong.
                _ => 125,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.global.debug {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(std::io::stderr)
            .init();
    }
    if let cli::Command::CopyHelper { op, pid, path } = &cli.command {
        return ExitCode::from(berth_api::copy_helper(op, *pid, path).clamp(0, 255) as u8);
    }
    if let cli::Command::GuestInit = &cli.command {
        // PID 1 of a machine's guest: single-threaded, it never returns.
        berth_guest::init::run(&guest_binary());
    }
    if let cli::Command::GuestEngine = &cli.command {
        // Its log is the machine's console (`berth machine logs`).
        log_to_stderr(false);
        return match tokio::runtime::Runtime::new() {
            Ok(rt) => {
                let code = rt.block_on(berth_guest::engine::run(guest_binary()));
                // A read of the link's port holds a blocking-pool thread that never
                // returns; dropping the runtime would wait for it for good, and PID 1
                // powers off only once this process has exited.
                rt.shutdown_background();
                ExitCode::from(code.clamp(0, 255) as u8)
            }
            Err(e) => {
                eprintln!("berth-guest: cannot start the async runtime: {e}");
                ExitCode::from(1)
            }
        };
    }
    // An ordinary user's engine runs as root inside the user's own user namespace
    // (berth-rootless); joining it needs a single-threaded process, so it comes first.
    // Machines run on the host as the user, and with `BERTH_HOST` the engine is elsewhere.
    let host_only = matches!(
        cli.command,
        cli::Command::Machine(_) | cli::Command::System(cli::SystemCommand::DockerCommand { .. })
    );
    if !host_only && client::target().is_none() {
        match berth_rootless::enter() {
            Ok(entered) => {
                for warning in entered.warnings() {
                    eprintln!("Warning: {warning}");
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                return ExitCode::from(1);
            }
        }
    }
    // The shim forks first thing, so it must run before any thread exists.
    let root = client::root(&cli.global);
    if let cli::Command::Shim { state_dir } = &cli.command {
        return match commands::shim(&cli.global, state_dir) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("Error: {}", commands::describe(&e, &root));
                ExitCode::from(1)
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "Error: cannot start the async runtime ({e}) — the system may be out of threads or memory."
            );
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error: {}", commands::describe(&e, &root));
            ExitCode::from(commands::exit_code(&e))
        }
    }
}
