//! The command line, in docker's syntax.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "Berth: build, pull, push and run containers without Docker",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Where images and containers are stored (default: /var/lib/berth as root, else $XDG_DATA_HOME/berth)
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// A registry that may be reached over plain HTTP or with an unverified certificate (repeatable)
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// A mirror to try first for docker.io images (repeatable), e.g. http://127.0.0.1:5000
    #[arg(long = "registry-mirror", global = true, value_name = "URL")]
    pub registry_mirrors: Vec<String>,
    /// Show debug logs
    #[arg(short = 'D', long, global = true)]
    pub debug: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout { server: Option<String> },
    /// Show low-level information on images
    Inspect(InspectArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load images from a tar archive
    Load(LoadArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage Berth
    #[command(subcommand)]
    System(SystemCommand),
}

#[derive(Subcommand, Debug)]
pub enum ImageCommand {
    /// List images
    #[command(alias = "list")]
    Ls(ImagesArgs),
    Pull(PullArgs),
    Push(PushArgs),
    Tag {
        source: String,
        target: String,
    },
    /// Remove one or more images
    #[command(alias = "remove")]
    Rm(RmiArgs),
    Inspect(InspectArgs),
    History(HistoryArgs),
    Save(SaveArgs),
    Load(LoadArgs),
    /// Remove unused images
    Prune(PruneArgs),
}

#[derive(Subcommand, Debug)]
pub enum SystemCommand {
    /// Show disk usage
    Df,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Set platform if the image is multi-platform, e.g. linux/arm64
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images (intermediate images too)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only images of this repository (and tag)
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    pub server: Option<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using a Go-template-like path, e.g. '{{.Id}}' or '{{json .Config}}'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only `image` is supported until containers exist
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub human: bool,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}
