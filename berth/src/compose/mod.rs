//! `berth compose`: Compose v2's commands, native, over the same client as every other
//! command (so it works on the engine of this computer, an ordinary user's, or a
//! machine's). Files are parsed and validated with the `compose_spec` crate
//! ([`project`]), interpolated first ([`interpolate`]), and each service becomes a create
//! body with Compose's labels ([`convert`]), so docker-compose and Compose v2 see Berth's
//! projects and Berth sees theirs.

pub mod convert;
pub mod interpolate;
pub mod project;
mod run;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::client::Client;

#[derive(Args, Debug)]
pub struct ComposeArgs {
    /// Compose configuration files (default: compose.yaml in this folder or above)
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Project name (default: the folder's name)
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<String>,
    /// The folder relative paths are taken from (default: the first file's)
    #[arg(long)]
    pub project_directory: Option<PathBuf>,
    /// Enable the services of a profile
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    /// Variables for interpolation (default: .env in the project folder)
    #[arg(long)]
    pub env_file: Option<PathBuf>,
    #[command(subcommand)]
    pub command: ComposeCommand,
}

#[derive(Subcommand, Debug)]
pub enum ComposeCommand {
    /// Create and start the project's containers
    Up {
        /// Run in the background
        #[arg(short, long)]
        detach: bool,
        /// Build images before starting
        #[arg(long)]
        build: bool,
        /// Recreate containers even if their configuration is unchanged
        #[arg(long)]
        force_recreate: bool,
        /// Remove containers of services not in the file
        #[arg(long)]
        remove_orphans: bool,
        /// Scale SERVICE to NUM instances (SERVICE=NUM)
        #[arg(long)]
        scale: Vec<String>,
        /// Wait for services to be running or healthy (implies --detach)
        #[arg(long)]
        wait: bool,
        services: Vec<String>,
    },
    /// Stop and remove the project's containers and networks
    Down {
        /// Remove the named volumes of the file, and anonymous ones
        #[arg(short, long)]
        volumes: bool,
        /// Remove containers of services not in the file
        #[arg(long)]
        remove_orphans: bool,
        /// Seconds to wait for each container to stop
        #[arg(short = 't', long)]
        timeout: Option<u64>,
    },
    /// List the project's containers
    Ps {
        /// Show stopped containers too
        #[arg(short, long)]
        all: bool,
        /// Only IDs
        #[arg(short, long)]
        quiet: bool,
        /// Only service names
        #[arg(long)]
        services: bool,
        #[arg(value_name = "SERVICE")]
        names: Vec<String>,
    },
    /// Output of the project's containers, interleaved
    Logs {
        #[arg(short, long)]
        follow: bool,
        #[arg(short, long)]
        timestamps: bool,
        /// Number of lines from the end of each container's log
        #[arg(short = 'n', long)]
        tail: Option<String>,
        /// Monochrome output
        #[arg(long)]
        no_color: bool,
        services: Vec<String>,
    },
    /// Build the services that have a build: section
    Build { services: Vec<String> },
    /// Pull the services' images
    Pull { services: Vec<String> },
    /// Push the services' images
    Push { services: Vec<String> },
    /// The project as Berth reads it (interpolated, merged), as YAML
    Config {
        /// Only the service names
        #[arg(long)]
        services: bool,
        /// Only check it
        #[arg(short, long)]
        quiet: bool,
    },
    /// Start the project's stopped containers
    Start { services: Vec<String> },
    /// Stop the project's containers
    Stop {
        #[arg(short = 't', long)]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Restart the project's containers
    Restart {
        #[arg(short = 't', long)]
        timeout: Option<u64>,
        services: Vec<String>,
    },
    /// Remove the project's stopped containers
    Rm {
        /// Also stop them
        #[arg(short, long)]
        stop: bool,
        /// Do not ask
        #[arg(short, long)]
        force: bool,
        /// Remove their anonymous volumes
        #[arg(short, long)]
        volumes: bool,
        services: Vec<String>,
    },
    /// Run a command in a service's running container
    Exec {
        #[arg(short, long)]
        detach: bool,
        /// No terminal (the default when this has none)
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        #[arg(short, long)]
        user: Option<String>,
        #[arg(short, long)]
        workdir: Option<String>,
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// Which container of a scaled service
        #[arg(long, default_value_t = 1)]
        index: u64,
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Run a one-off command in a new container of a service
    Run {
        #[arg(short, long)]
        detach: bool,
        #[arg(long)]
        rm: bool,
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// No terminal
        #[arg(short = 'T', long = "no-TTY")]
        no_tty: bool,
        service: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

impl ComposeArgs {
    fn options(&self) -> project::Options {
        project::Options {
            files: self.files.clone(),
            project_name: self.project_name.clone(),
            project_directory: self.project_directory.clone(),
            profiles: self.profiles.clone(),
            env_file: self.env_file.clone(),
        }
    }
}

/// `config` reads files only: no engine is needed.
pub fn needs_engine(a: &ComposeArgs) -> bool {
    !matches!(a.command, ComposeCommand::Config { .. })
}

pub fn config(a: &ComposeArgs) -> anyhow::Result<u8> {
    let p = project::Project::load(&a.options())?;
    let ComposeCommand::Config { services, quiet } = &a.command else {
        unreachable!("config only")
    };
    if *quiet {
        return Ok(0);
    }
    if *services {
        for (name, _) in p.services(&[])? {
            println!("{name}");
        }
        return Ok(0);
    }
    let mut doc = serde_yaml::to_value(&p.compose)?;
    if let serde_yaml::Value::Mapping(m) = &mut doc {
        m.insert("name".into(), p.name.clone().into());
    }
    print!("{}", serde_yaml::to_string(&doc)?);
    Ok(0)
}

pub async fn run(c: &Client, a: ComposeArgs) -> anyhow::Result<u8> {
    let p = project::Project::load(&a.options())?;
    run::dispatch(c, &p, a.command).await
}
