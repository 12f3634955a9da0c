//! One function per command, each written once against the client (`crate::client`):
//! the same code drives the engine this command started, the one serving the store root,
//! or a remote one (`BERTH_HOST`). Each prints what docker prints.

mod auth;
pub(crate) mod build;
pub(crate) mod container;
pub(crate) mod create_body;
mod daemon;
pub(crate) mod image;
mod machine;
mod shim;
mod system;
mod volume;

use std::path::Path;

use berth_api::unreachable::{Advice, Unreachable};

use crate::cli::{BuilderCommand, Cli, Command, ContainerCommand, ImageCommand, SystemCommand};
use crate::client::Client;

pub use shim::shim;

/// Runs a command; the returned code is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Daemon(a) => return daemon::daemon(g, a).await,
        Command::Shim { state_dir } => return shim(g, &state_dir),
        Command::Logout { server } => return auth::logout(server),
        // Handled in main before the runtime starts.
        Command::CopyHelper { op, pid, path } => {
            return Ok(berth_api::copy_helper(&op, pid, &path).clamp(0, 255) as u8)
        }
        Command::Machine(m) => return machine::run(m).await,
        Command::Compose(a) if !crate::compose::needs_engine(&a) => return crate::compose::config(&a),
        Command::System(SystemCommand::DockerCommand { remove, status, dir }) => {
            return system::docker_command(remove, status, dir)
        }
        Command::GuestInit | Command::GuestEngine => {
            anyhow::bail!("guest-init and guest-engine run only inside a machine's guest")
        }
        _ => {}
    }
    let c = Client::connect(g).await?;
    let result = dispatch(&c, cli.command).await;
    c.finish().await;
    result
}

async fn dispatch(c: &Client, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => image::pull(c, a).await,
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => image::push(c, a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(c, a).await,
        Command::Tag { source, target } | Command::Image(ImageCommand::Tag { source, target }) => {
            image::tag(c, &source, &target).await
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(c, a).await,
        Command::Inspect(a) => image::inspect(c, a).await,
        Command::Image(ImageCommand::Inspect(a)) => image::inspect(c, a.of_kind("image")).await,
        Command::History(a) | Command::Image(ImageCommand::History(a)) => image::history(c, a).await,
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => image::save(c, a).await,
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => image::load(c, a).await,
        Command::Image(ImageCommand::Prune(a)) => image::prune(c, a).await,
        Command::Login(a) => auth::login(c, a).await,
        Command::System(SystemCommand::Df) => system::df(c).await,
        Command::System(SystemCommand::Check { repair }) => system::check(c, repair).await,
        Command::System(SystemCommand::Prune(a)) => build::system_prune(c, a).await,
        Command::System(SystemCommand::DockerCommand { .. }) => unreachable!("handled before connecting"),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(c, a).await,
        Command::Builder(BuilderCommand::Prune { all, force }) => build::builder_prune(c, all, force).await,
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => container::run(c, a, true).await,
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            container::run(c, a, false).await
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => container::start(c, a).await,
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => container::attach(c, a).await,
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => {
            container::stop(c, a, false).await
        }
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            container::stop(c, a, true).await
        }
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => container::kill(c, a).await,
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => container::rm(c, a).await,
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => container::ps(c, a).await,
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => container::logs(c, a).await,
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => container::exec(c, a).await,
        Command::Container(ContainerCommand::Inspect(a)) => image::inspect(c, a.of_kind("container")).await,
        Command::Container(ContainerCommand::Prune { force }) => container::prune(c, force).await,
        Command::Wait { containers } => container::wait(c, &containers).await,
        Command::Pause { containers } => container::pause(c, &containers, true).await,
        Command::Unpause { containers } => container::pause(c, &containers, false).await,
        Command::Port { container } => container::port(c, &container).await,
        Command::Search(a) => image::search(c, a).await,
        Command::Stats(a) => container::stats(c, a).await,
        Command::Volume(v) => volume::volume(c, v).await,
        Command::Network(n) => volume::network(c, n).await,
        Command::Compose(a) => crate::compose::run(c, a).await,
        Command::Daemon(_)
        | Command::Shim { .. }
        | Command::Logout { .. }
        | Command::CopyHelper { .. }
        | Command::GuestInit
        | Command::GuestEngine
        | Command::Machine(_) => {
            unreachable!("handled before connecting")
        }
    }
}

/// docker's "Deleted Containers:" (Volumes, Networks) list after a prune, when not empty.
pub fn print_deleted(what: &str, deleted: &[String]) {
    if deleted.is_empty() {
        return;
    }
    println!("Deleted {what}:");
    for d in deleted {
        println!("{d}");
    }
    println!();
}

/// Runs `f` for each name, printing the name on success and the error otherwise (docker).
pub async fn each<F, Fut>(names: &[String], f: F) -> anyhow::Result<u8>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut code = 0;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// The one sentence a user sees for an error. Engine errors are written as complete
/// sentences, so their sources (library details) are not appended. A registry that could
/// not be reached gets the engine's sentence, this CLI's next step (its flags, the root's
/// daemon.json) and the low-level words on a line of their own.
pub fn describe(e: &anyhow::Error, root: &Path) -> String {
    let text = e.to_string();
    let Some(u) = Unreachable::parse(&text) else {
        return text;
    };
    let next = if crate::client::target().is_some() {
        // The settings that matter are the remote engine's own.
        let (mirror, insecure) = u.engine_advice();
        u.next_step(&Advice {
            mirror: &mirror,
            insecure: &insecure,
        })
    } else {
        let daemon_json = root.join("daemon.json");
        u.next_step(&Advice {
            mirror: &format!(
                "pull through a registry mirror (`berth --registry-mirror URL pull …`, or \"registry-mirrors\" in {})",
                daemon_json.display()
            ),
            insecure: &format!(
                "use `--insecure-registry {}` (or \"insecure-registries\" in {})",
                u.registry,
                daemon_json.display()
            ),
        })
    };
    format!("{} {next}\nDetails: {}", u.sentence(), u.detail)
}

/// docker's exit codes: 1 for a failed command (125 for a bad command line is clap's).
pub fn exit_code(_e: &anyhow::Error) -> u8 {
    1
}

/// Reads a yes/no answer as docker's prompts do (default no).
pub fn confirm(question: &str) -> bool {
    use std::io::Write;
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim(), "y" | "Y" | "yes" | "Yes")
}
