//! One function per command; each prints what docker prints.

mod auth;
mod build;
mod container;
mod daemon;
mod image;
mod system;
mod volume;

use std::path::Path;

use berth_api::unreachable::{Advice, Unreachable};

use crate::cli::{BuilderCommand, Cli, Command, ContainerCommand, ImageCommand, SystemCommand};

pub use container::shim;

/// Runs a command; the returned code is the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    // BERTH_HOST: drive that engine through its API (the daemon itself always serves locally).
    if let Some(host) = crate::remote::target() {
        if !matches!(
            cli.command,
            Command::Daemon(_) | Command::Shim { .. } | Command::CopyHelper { .. }
        ) {
            return crate::remote::run(cli, &host).await;
        }
    }
    let g = &cli.global;
    match cli.command {
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => image::pull(g, a).await,
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => image::push(g, a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(g, a),
        Command::Tag { source, target } | Command::Image(ImageCommand::Tag { source, target }) => {
            image::tag(g, &source, &target)
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(g, a),
        Command::Inspect(a) => image::inspect(g, a),
        Command::Image(ImageCommand::Inspect(a)) => image::inspect(g, a.of_kind("image")),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => image::history(g, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => image::save(g, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => image::load(g, a),
        Command::Image(ImageCommand::Prune(a)) => image::prune(g, a),
        Command::Login(a) => auth::login(g, a).await,
        Command::Logout { server } => auth::logout(server),
        Command::System(SystemCommand::Df) => system::df(g),
        Command::System(SystemCommand::Check { repair }) => system::check(g, repair),
        Command::System(SystemCommand::Prune(a)) => build::system_prune(g, a),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(g, a).await,
        Command::Builder(BuilderCommand::Prune { all, force }) => build::builder_prune(g, all, force),
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => container::run(g, a).await,
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => container::create(g, a).await,
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => container::start(g, a).await,
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => container::attach(g, a).await,
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => container::stop(g, a),
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => container::restart(g, a),
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => container::kill(g, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => container::rm(g, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => container::ps(g, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => container::logs(g, a),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => container::exec(g, a),
        Command::Container(ContainerCommand::Inspect(a)) => image::inspect(g, a.of_kind("container")),
        Command::Container(ContainerCommand::Prune { force }) => container::prune(g, force),
        Command::Wait { containers } => container::wait(g, &containers),
        Command::Pause { containers } => container::pause(g, &containers, true),
        Command::Unpause { containers } => container::pause(g, &containers, false),
        Command::Port { container } => container::port(g, &container),
        Command::Stats(a) => container::stats(g, a),
        Command::Volume(v) => volume::volume(g, v),
        Command::Network(n) => volume::network(g, n),
        Command::Daemon(a) => daemon::daemon(g, a).await,
        Command::Shim { state_dir } => container::shim(g, &state_dir),
        // Handled in main before the runtime starts.
        Command::CopyHelper { op, pid, path } => {
            Ok(berth_api::copy_helper(&op, pid, &path).clamp(0, 255) as u8)
        }
    }
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
    let next = if crate::remote::target().is_some() {
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
