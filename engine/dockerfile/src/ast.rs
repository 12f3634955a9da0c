//! The parsed Dockerfile: stages and their instructions, with every value kept raw.
//!
//! Values stay unexpanded (quotes and `$VAR`s intact) because their meaning depends on the
//! ARG/ENV state at build time; the builder runs them through [`crate::expand`].

use std::time::Duration;

use serde::Serialize;

/// A whole Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    pub directives: Directives,
    /// ARGs declared before the first FROM; usable in FROM lines, and inside a stage only
    /// after that stage redeclares them (`ARG NAME` without a default).
    pub global_args: Vec<ArgDecl>,
    pub stages: Vec<Stage>,
}

/// Parser directives: `# escape=` and `# syntax=` comments at the very top of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// The escape character: `\` unless `# escape=`` ` ``.
    pub escape: char,
    pub syntax: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            escape: '\\',
            syntax: None,
        }
    }
}

/// One build stage: a FROM and the instructions up to the next FROM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Position among the stages, from 0 (what `--from=0` refers to).
    pub index: usize,
    /// The `AS name`, lowercased.
    pub name: Option<String>,
    /// The base image (or an earlier stage's name) as written, unexpanded.
    pub base: String,
    /// `--platform=` as written, unexpanded.
    pub platform: Option<String>,
    /// 1-based line of the FROM.
    pub line: usize,
    pub instructions: Vec<Instruction>,
}

/// One instruction inside a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction as docker prints it in `Step N/M : …`: keyword as written and the
    /// rest, continuation lines joined, comments dropped, heredoc bodies not included.
    pub original: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Kind {
    Run(Run),
    /// `CMD` with nothing after it is `Exec([])`, as `CMD []`.
    Cmd(ShellOrExec),
    /// `ENTRYPOINT` with nothing after it is `Exec([])`: it clears the inherited one.
    Entrypoint(ShellOrExec),
    /// `ENV k=v k2="v 2"` or legacy `ENV k v w` (one pair, value = the rest of the line).
    Env(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Label(Vec<KeyValue>),
    /// Ports as raw words (`80/tcp`, `${PORT}`); expand each with `process_words`.
    Expose(Vec<String>),
    Copy(Copy),
    Add(Copy),
    /// Raw path, expand with `process_word`.
    Workdir(String),
    /// Raw `user[:group]`.
    User(String),
    /// Raw paths (JSON form already decoded).
    Volume(Vec<String>),
    /// The JSON array, decoded.
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    /// The trigger; never ONBUILD, FROM or MAINTAINER. Its `original` is the text the
    /// image config's `OnBuild` list stores: the line after `ONBUILD `, followed by any
    /// heredoc bodies, each closed by its name.
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: ShellOrExec,
    /// `--network=` value: `none`, `default` or `host`.
    pub network: Option<String>,
    /// Each `--mount=` value as written (quotes removed), e.g. `type=cache,target=/root/.cache`.
    pub mounts: Vec<String>,
    /// Heredoc bodies named in the command, in order. When the whole command is one
    /// heredoc (`RUN <<EOF`), BuildKit runs its body as the script; otherwise the shell
    /// command line is followed by each body and its terminator, for the shell to read.
    pub heredocs: Vec<Heredoc>,
}

/// Shell form (run through the stage's SHELL, `/bin/sh -c` by default) or exec form
/// (a JSON array, run as is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ShellOrExec {
    /// The command line as written (raw: the shell itself expands it).
    Shell(String),
    Exec(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// Raw key (may be quoted, e.g. LABEL `"com.example.vendor"=ACME`).
    pub key: String,
    /// Raw value: quotes intact, expanded later with `process_word`.
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub name: String,
    /// Raw default, expanded later with `process_word`.
    pub default: Option<String>,
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Source paths as written (heredoc sources are in `heredocs` instead).
    pub sources: Vec<String>,
    pub dest: String,
    /// `--from=` (COPY only): a stage name or index, or an image.
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    /// Every `--exclude=` pattern, in order.
    pub excludes: Vec<String>,
    /// Inline sources (`COPY <<EOF /dest`): each becomes a file named after its heredoc.
    pub heredocs: Vec<Heredoc>,
    /// `--parents` (COPY only).
    pub parents: bool,
    /// `--checksum=` (ADD only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only).
    pub keep_git_dir: bool,
}

/// A heredoc body (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The terminator word with quotes removed (`<<"EOF"` → `EOF`).
    pub name: String,
    /// Every line up to the terminator, each ending in `\n`. When `strip_tabs`, leading
    /// tabs are already removed (doing it again is harmless).
    pub content: String,
    /// False when the name was quoted (`<<"EOF"`, `<<'EOF'`): no variable expansion.
    /// When true, a COPY/ADD body is expanded with [`crate::expand::process_heredoc`]
    /// (quotes kept); a RUN body is left to the shell.
    pub expand: bool,
    /// `<<-EOF`: leading tabs stripped from the body and the terminator.
    pub strip_tabs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base image.
    None,
    Check {
        test: ShellOrExec,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

impl Dockerfile {
    /// The stage a `--from=` or `FROM` reference names: a stage name (any case) or an
    /// index (`0`). `None` means the reference is an image.
    pub fn find_stage(&self, reference: &str) -> Option<&Stage> {
        let lower = reference.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| reference.parse::<usize>().ok().and_then(|i| self.stages.get(i)))
    }
}

impl Kind {
    /// The instruction keyword in upper case (`RUN`, `COPY`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Kind::Run(_) => "RUN",
            Kind::Cmd(_) => "CMD",
            Kind::Entrypoint(_) => "ENTRYPOINT",
            Kind::Env(_) => "ENV",
            Kind::Arg(_) => "ARG",
            Kind::Label(_) => "LABEL",
            Kind::Expose(_) => "EXPOSE",
            Kind::Copy(_) => "COPY",
            Kind::Add(_) => "ADD",
            Kind::Workdir(_) => "WORKDIR",
            Kind::User(_) => "USER",
            Kind::Volume(_) => "VOLUME",
            Kind::Shell(_) => "SHELL",
            Kind::StopSignal(_) => "STOPSIGNAL",
            Kind::Healthcheck(_) => "HEALTHCHECK",
            Kind::Onbuild(_) => "ONBUILD",
            Kind::Maintainer(_) => "MAINTAINER",
        }
    }
}
