//! `berth machine …`: a Linux VM whose guest runs Berth's engine (berth-machine). These
//! commands manage the VM on the host; containers inside it are reached through the
//! machine's Engine API socket like any other engine's.

use std::time::Duration;

use anyhow::Context;
use berth_machine::{Accel, InitOptions, Machines, SetOptions, StartOptions, DEFAULT_NAME};

use crate::cli::MachineCommand;

fn name_or_default(n: Option<String>) -> String {
    n.unwrap_or_else(|| DEFAULT_NAME.to_string())
}

pub async fn run(cmd: MachineCommand) -> anyhow::Result<u8> {
    let machines = Machines::default_dir();
    let exe = std::env::current_exe().context("cannot find the berth binary")?;
    match cmd {
        MachineCommand::Init(a) => {
            let name = name_or_default(a.name);
            let env = std::env::var_os("BERTH_GUEST")
                .filter(|v| !v.is_empty())
                .map(std::path::PathBuf::from);
            let guest = berth_machine::find_guest(&exe, env.as_deref())?;
            let opts = InitOptions {
                cpus: a.cpus,
                memory: a.memory,
                disk_size: a.disk_size,
                guest: Some(guest.clone()),
            };
            let cfg = machines.init(&name, &opts, guest)?;
            println!(
                "Machine \"{}\" created: {} CPUs, {} MiB, {} GiB disk. Start it with: berth machine start{}",
                cfg.name,
                cfg.cpus,
                cfg.memory,
                cfg.disk_size,
                if name == DEFAULT_NAME {
                    String::new()
                } else {
                    format!(" {name}")
                }
            );
            Ok(0)
        }
        MachineCommand::Start { name, boot_timeout } => {
            let name = name_or_default(name);
            let accel = match std::env::var("BERTH_MACHINE_ACCEL") {
                Ok(v) if !v.is_empty() => Some(Accel::parse(&v).with_context(|| {
                    format!("BERTH_MACHINE_ACCEL={v} is not an accelerator: use kvm, hvf, whpx or tcg")
                })?),
                _ => None,
            };
            let opts = StartOptions {
                relay_exe: exe,
                accel,
                boot_limit: boot_timeout.map(Duration::from_secs),
            };
            eprintln!("Starting machine \"{name}\"…");
            let m = machines.clone();
            let n = name.clone();
            let started = tokio::task::spawn_blocking(move || m.start(&n, &opts)).await??;
            for w in &started.warnings {
                eprintln!("Warning: {w}");
            }
            let socket = machines.paths(&name).api();
            if started.reconnected {
                println!(
                    "Machine \"{name}\" was running; its relay serves {} again.",
                    socket.display()
                );
            } else {
                println!(
                    "Machine \"{name}\" started in {:.1} s ({}). Its engine: DOCKER_HOST=unix://{}",
                    started.boot.as_secs_f64(),
                    started.accel.name(),
                    socket.display()
                );
            }
            Ok(0)
        }
        MachineCommand::Stop { name } => {
            let name = name_or_default(name);
            let m = machines.clone();
            let n = name.clone();
            let stopped = tokio::task::spawn_blocking(move || m.stop(&n, Duration::from_secs(30))).await??;
            if stopped {
                println!("Machine \"{name}\" stopped.");
            } else {
                println!("Machine \"{name}\" was not running.");
            }
            Ok(0)
        }
        MachineCommand::Set(a) => {
            let name = name_or_default(a.name);
            let opts = SetOptions {
                cpus: a.cpus,
                memory: a.memory,
                disk_size: a.disk_size,
            };
            if opts.is_empty() {
                anyhow::bail!("nothing to change: give --cpus, --memory or --disk-size");
            }
            let cfg = machines.set(&name, &opts)?;
            println!(
                "Machine \"{}\": {} CPUs, {} MiB, {} GiB disk from its next start.",
                cfg.name, cfg.cpus, cfg.memory, cfg.disk_size
            );
            Ok(0)
        }
        MachineCommand::Rm { name, force } => {
            let name = name_or_default(name);
            machines.remove(&name, force)?;
            println!("Machine \"{name}\" removed.");
            Ok(0)
        }
        MachineCommand::Ls => {
            let mut rows = Vec::new();
            for name in machines.names() {
                let i = machines.inspect(&name)?;
                rows.push(vec![
                    i.name,
                    serde_json::to_value(i.state)?.as_str().unwrap_or("").to_string(),
                    i.cpus.to_string(),
                    format!("{}MiB", i.memory),
                    format!("{}GiB", i.disk_size),
                    if i.accelerator.is_empty() {
                        "-".into()
                    } else {
                        i.accelerator
                    },
                ]);
            }
            let mut out = std::io::stdout();
            crate::render::table(
                &mut out,
                &["NAME", "STATE", "CPUS", "MEMORY", "DISK SIZE", "ACCELERATOR"],
                &rows,
            )?;
            Ok(0)
        }
        MachineCommand::Inspect { names } => {
            let names = if names.is_empty() {
                vec![DEFAULT_NAME.to_string()]
            } else {
                names
            };
            let mut all = Vec::new();
            let mut code = 0;
            for n in names {
                match machines.inspect(&n) {
                    Ok(i) => all.push(i),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(code)
        }
        MachineCommand::Logs { name } => {
            let name = name_or_default(name);
            machines.load(&name)?;
            let path = machines.paths(&name).console();
            match std::fs::read(&path) {
                Ok(b) => {
                    use std::io::Write;
                    std::io::stdout().write_all(&b)?;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    eprintln!("Machine \"{name}\" has not been started yet: it has no console log.");
                }
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            }
            Ok(0)
        }
        MachineCommand::Relay {
            name,
            qemu_pid,
            boot_limit_ms,
        } => {
            crate::log_to_stderr(false);
            let code =
                berth_machine::relay::run(&machines, &name, qemu_pid, Duration::from_millis(boot_limit_ms))
                    .await;
            Ok(code.clamp(0, 255) as u8)
        }
    }
}
