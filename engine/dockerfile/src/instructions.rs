//! One logical line to one instruction: the keyword, its flags and its arguments in the
//! form BuildKit reads for that keyword (JSON or shell, raw words, name=value pairs).

use std::time::Duration;

use crate::ast::{ArgDecl, Copy, Healthcheck, Heredoc, Instruction, KeyValue, Kind, Run, ShellOrExec};
use crate::flags::{edit_distance, FlagType, Flags};
use crate::words::{blank_words, extract_flags, raw_words, split_first_blank};

const KEYWORDS: [&str; 18] = [
    "FROM",
    "RUN",
    "CMD",
    "ENTRYPOINT",
    "COPY",
    "ADD",
    "ENV",
    "ARG",
    "LABEL",
    "EXPOSE",
    "WORKDIR",
    "USER",
    "VOLUME",
    "SHELL",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "ONBUILD",
    "MAINTAINER",
];

pub(crate) enum Parsed {
    From {
        base: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Instruction(Kind),
}

/// A heredoc announced on an instruction line (`<<EOF`, `<<-EOF`, `<<"EOF"`), before its
/// body is read.
pub(crate) struct HeredocHead {
    pub(crate) name: String,
    pub(crate) expand: bool,
    pub(crate) strip_tabs: bool,
}

/// The heredocs a logical line announces. Only RUN, COPY and ADD (also as ONBUILD
/// triggers) in their non-JSON form can carry heredocs. Words are cut with `\\` as the
/// escape whatever `# escape=` says, as BuildKit does.
pub(crate) fn heredoc_heads(text: &str) -> Result<Vec<HeredocHead>, String> {
    let (keyword, rest) = split_first_blank(text.trim());
    let (_, args) = extract_flags(rest);
    match keyword.to_ascii_lowercase().as_str() {
        "onbuild" => heredoc_heads(&args),
        "run" | "copy" | "add" if args.contains("<<") => {
            if matches!(json_array(&args), Ok(Some(_)) | Err(_)) {
                return Ok(Vec::new());
            }
            let mut heads = Vec::new();
            for word in raw_words(&join_heredoc_operators(&args), '\\') {
                if let Some(head) = heredoc_word(&word)? {
                    heads.push(head);
                }
            }
            Ok(heads)
        }
        _ => Ok(Vec::new()),
    }
}

/// Glues `<<` (or `<<-`) to the word after it: BuildKit accepts `<< EOF` as `<<EOF`.
pub(crate) fn join_heredoc_operators(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("<<") {
        let (before, after) = rest.split_at(at + 2);
        out.push_str(before);
        let after = match after.strip_prefix('-') {
            Some(stripped) => {
                out.push('-');
                stripped
            }
            None => after,
        };
        let trimmed = after.trim_start_matches([' ', '\t']);
        // Only when a word follows: a trailing `<<` stays as written.
        rest = if trimmed.is_empty() { after } else { trimmed };
    }
    out.push_str(rest);
    out
}

/// Matches BuildKit's `^(\d*)<<(-?)([^<]*)$` on one raw word.
pub(crate) fn heredoc_word(word: &str) -> Result<Option<HeredocHead>, String> {
    let Some(rest) = word
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .strip_prefix("<<")
    else {
        return Ok(None);
    };
    let (strip_tabs, rest) = match rest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, rest),
    };
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let mut name = String::new();
    let mut quote: Option<char> = None;
    let mut quoted = false;
    let mut chars = rest.chars();
    while let Some(ch) = chars.next() {
        match (quote, ch) {
            (None, '\'' | '"') => {
                quote = Some(ch);
                quoted = true;
            }
            (Some(q), _) if ch == q => quote = None,
            (Some('\''), _) => name.push(ch),
            (_, '\\') => name.extend(chars.next()),
            _ => name.push(ch),
        }
    }
    if name.is_empty() {
        // `<<""` names nothing; BuildKit does not take it as a heredoc either.
        return Ok(None);
    }
    if quote.is_some() {
        return Err(format!(
            "the heredoc name {rest} is not a valid word — write it as <<EOF or <<\"EOF\""
        ));
    }
    Ok(Some(HeredocHead {
        name,
        expand: !quoted,
        strip_tabs,
    }))
}

/// Parses one instruction (`text` = keyword and arguments, continuations joined).
pub(crate) fn parse_instruction(
    text: &str,
    heredocs: Vec<Heredoc>,
    escape: char,
    line: usize,
) -> Result<Parsed, String> {
    let (keyword, rest) = split_first_blank(text.trim());
    let (raw_flags, args) = extract_flags(rest);
    let args = args.trim();
    let upper = keyword.to_ascii_uppercase();
    let kind = match upper.as_str() {
        "FROM" => return from(&raw_flags, args),
        "RUN" => Kind::Run(run(&raw_flags, args, heredocs)?),
        // CMD and ENTRYPOINT with nothing after them are accepted, as docker does: they
        // clear the inherited value, like `[]`.
        "CMD" => {
            Flags::parse("CMD", &[], &raw_flags)?;
            Kind::Cmd(command_or_empty("CMD", args)?)
        }
        "ENTRYPOINT" => {
            Flags::parse("ENTRYPOINT", &[], &raw_flags)?;
            Kind::Entrypoint(command_or_empty("ENTRYPOINT", args)?)
        }
        "ENV" => {
            Flags::parse("ENV", &[], &raw_flags)?;
            Kind::Env(name_values("ENV", args, escape)?)
        }
        "LABEL" => {
            Flags::parse("LABEL", &[], &raw_flags)?;
            Kind::Label(name_values("LABEL", args, escape)?)
        }
        "ARG" => {
            Flags::parse("ARG", &[], &raw_flags)?;
            Kind::Arg(arg(args, escape)?)
        }
        "EXPOSE" => {
            Flags::parse("EXPOSE", &[], &raw_flags)?;
            let ports = blank_words(args);
            if ports.is_empty() {
                return Err("EXPOSE needs at least one port, e.g. EXPOSE 80 or EXPOSE 53/udp".into());
            }
            Kind::Expose(ports)
        }
        "COPY" => Kind::Copy(copy("COPY", &raw_flags, args, heredocs)?),
        "ADD" => Kind::Add(copy("ADD", &raw_flags, args, heredocs)?),
        "WORKDIR" => Kind::Workdir(single("WORKDIR", &raw_flags, args, "a path, e.g. WORKDIR /app")?),
        "USER" => Kind::User(single(
            "USER",
            &raw_flags,
            args,
            "a user, e.g. USER app or USER 1000:1000",
        )?),
        "STOPSIGNAL" => Kind::StopSignal(single(
            "STOPSIGNAL",
            &raw_flags,
            args,
            "a signal, e.g. STOPSIGNAL SIGTERM",
        )?),
        "MAINTAINER" => Kind::Maintainer(single(
            "MAINTAINER",
            &raw_flags,
            args,
            "a name (better: LABEL maintainer=…)",
        )?),
        "VOLUME" => {
            Flags::parse("VOLUME", &[], &raw_flags)?;
            let paths = match json_array(args)? {
                Some(paths) => paths,
                None => blank_words(args),
            };
            if paths.is_empty() {
                return Err("VOLUME needs at least one path, e.g. VOLUME /data".into());
            }
            if paths.iter().any(|p| p.trim().is_empty()) {
                return Err("VOLUME paths can not be empty — remove the empty string".into());
            }
            Kind::Volume(paths)
        }
        "SHELL" => {
            Flags::parse("SHELL", &[], &raw_flags)?;
            match json_array(args)? {
                Some(shell) if !shell.is_empty() => Kind::Shell(shell),
                _ => return Err("SHELL needs a JSON array, e.g. SHELL [\"/bin/bash\", \"-c\"]".into()),
            }
        }
        "HEALTHCHECK" => Kind::Healthcheck(healthcheck(&raw_flags, args)?),
        "ONBUILD" => {
            Flags::parse("ONBUILD", &[], &raw_flags)?;
            if args.is_empty() {
                return Err("ONBUILD needs an instruction to run later, e.g. ONBUILD COPY . /app".into());
            }
            let trigger = split_first_blank(args).0.to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("ONBUILD ONBUILD isn't allowed — chaining ONBUILD is not supported".into())
                }
                "FROM" | "MAINTAINER" => {
                    return Err(format!(
                        "{trigger} isn't allowed as an ONBUILD trigger — move it out of ONBUILD"
                    ))
                }
                _ => {}
            }
            match parse_instruction(args, heredocs, escape, line)? {
                Parsed::Instruction(kind) => {
                    // The trigger as stored in the image's OnBuild list: heredoc bodies
                    // follow the line, each closed by its name (BuildKit's expression).
                    let mut original = args.to_string();
                    if let Kind::Run(Run { heredocs, .. })
                    | Kind::Copy(Copy { heredocs, .. })
                    | Kind::Add(Copy { heredocs, .. }) = &kind
                    {
                        for heredoc in heredocs {
                            original.push('\n');
                            original.push_str(&heredoc.content);
                            original.push_str(&heredoc.name);
                        }
                    }
                    Kind::Onbuild(Box::new(Instruction { line, original, kind }))
                }
                Parsed::From { .. } => return Err("FROM isn't allowed as an ONBUILD trigger".into()),
            }
        }
        _ => return Err(unknown_instruction(keyword)),
    };
    Ok(Parsed::Instruction(kind))
}

fn unknown_instruction(keyword: &str) -> String {
    let upper = keyword.to_ascii_uppercase();
    let closest = KEYWORDS.iter().map(|k| (edit_distance(k, &upper), *k)).min();
    match closest {
        Some((distance, k)) if distance <= 1 || (distance == 2 && upper.len() >= 6) => {
            format!("unknown instruction \"{keyword}\" — did you mean {k}?")
        }
        _ => format!(
            "unknown instruction \"{keyword}\" — check the spelling (instructions are {})",
            KEYWORDS.join(", ")
        ),
    }
}

fn from(raw_flags: &[String], args: &str) -> Result<Parsed, String> {
    let flags = Flags::parse("FROM", &[("platform", FlagType::String)], raw_flags)?;
    let words = blank_words(args);
    let name = match words.as_slice() {
        [_] => None,
        [_, as_word, name] if as_word.eq_ignore_ascii_case("as") => {
            let name = name.to_ascii_lowercase();
            let mut chars = name.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
            if !valid {
                return Err(format!(
                    "invalid stage name \"{name}\" — a name starts with a letter and has only letters, digits, -, _ and ."
                ));
            }
            Some(name)
        }
        [] => return Err("FROM needs an image, e.g. FROM debian:12 or FROM golang:1.22 AS build".into()),
        _ => return Err("FROM takes an image and optionally AS name, e.g. FROM golang:1.22 AS build".into()),
    };
    Ok(Parsed::From {
        base: words[0].clone(),
        name,
        platform: flags.string("platform"),
    })
}

fn run(raw_flags: &[String], args: &str, heredocs: Vec<Heredoc>) -> Result<Run, String> {
    let flags = Flags::parse(
        "RUN",
        &[
            ("mount", FlagType::Strings),
            ("network", FlagType::String),
            ("security", FlagType::String),
        ],
        raw_flags,
    )?;
    let network = flags.string("network");
    if let Some(mode) = &network {
        if !matches!(mode.as_str(), "none" | "default" | "host") {
            return Err(format!(
                "RUN --network={mode} is not a network mode — use none, default or host"
            ));
        }
    }
    if let Some(mode) = flags.string("security") {
        if mode != "sandbox" {
            return Err(format!(
                "RUN --security={mode} is not supported — Berth runs build steps sandboxed"
            ));
        }
    }
    let command = command("RUN", args, "RUN apt-get update")?;
    Ok(Run {
        command,
        network,
        mounts: flags.strings("mount"),
        heredocs,
    })
}

/// CMD, ENTRYPOINT and RUN: JSON form when the arguments are a valid JSON array of
/// strings, shell form otherwise (BuildKit falls back to shell form on invalid JSON).
fn command(keyword: &str, args: &str, example: &str) -> Result<ShellOrExec, String> {
    if args.is_empty() {
        return Err(format!("{keyword} needs a command, e.g. {example}"));
    }
    Ok(match json_array(args)? {
        Some(exec) => ShellOrExec::Exec(exec),
        None => ShellOrExec::Shell(args.to_string()),
    })
}

fn command_or_empty(keyword: &str, args: &str) -> Result<ShellOrExec, String> {
    if args.is_empty() {
        return Ok(ShellOrExec::Exec(Vec::new()));
    }
    command(keyword, args, "")
}

/// `Some` for a JSON array of strings, `None` for anything that is not valid JSON (the
/// caller falls back to its plain form), an error for valid JSON holding non-strings.
pub(crate) fn json_array(args: &str) -> Result<Option<Vec<String>>, String> {
    let args = args.trim_start();
    if !args.starts_with('[') {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(args) {
        Ok(serde_json::Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(s) => Ok(s),
                _ => {
                    Err("a JSON array here must hold only strings, e.g. [\"python\", \"app.py\"]".to_string())
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => Ok(None),
    }
}

/// ENV and LABEL: `k=v k2="v 2"` pairs, or the legacy `k value with spaces`.
fn name_values(keyword: &str, args: &str, escape: char) -> Result<Vec<KeyValue>, String> {
    let words = raw_words(args, escape);
    let Some(first) = words.first() else {
        return Err(format!(
            "{keyword} needs at least one NAME=value, e.g. {keyword} MODE=production"
        ));
    };
    if !first.contains('=') {
        let (key, value) = split_first_blank(args);
        if value.is_empty() {
            return Err(format!(
                "{keyword} {key} has no value — write {keyword} {key}=value"
            ));
        }
        return Ok(vec![KeyValue {
            key: key.to_string(),
            value: value.to_string(),
        }]);
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            None => Err(format!(
                "{keyword} expects NAME=value pairs, but \"{word}\" has no = — write {word}=value or quote spaces"
            )),
            Some(("", _)) => Err(format!("{keyword} needs a name before = in \"{word}\" — write NAME{word}")),
            Some((key, value)) => Ok(KeyValue { key: key.to_string(), value: value.to_string() }),
        })
        .collect()
}

fn arg(args: &str, escape: char) -> Result<Vec<ArgDecl>, String> {
    let words = raw_words(args, escape);
    if words.is_empty() {
        return Err("ARG needs a name, e.g. ARG VERSION or ARG VERSION=1.0".into());
    }
    words
        .into_iter()
        .map(|word| {
            let (name, default) = match word.split_once('=') {
                Some((name, default)) => (name.to_string(), Some(default.to_string())),
                None => (word.clone(), None),
            };
            if name.is_empty() {
                return Err(format!(
                    "ARG needs a name before = in \"{word}\" — write ARG NAME{word}"
                ));
            }
            Ok(ArgDecl { name, default })
        })
        .collect()
}

fn copy(
    keyword: &'static str,
    raw_flags: &[String],
    args: &str,
    heredocs: Vec<Heredoc>,
) -> Result<Copy, String> {
    let accepted: &[(&str, FlagType)] = if keyword == "COPY" {
        &[
            ("from", FlagType::String),
            ("chown", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("parents", FlagType::Bool),
            ("exclude", FlagType::Strings),
        ]
    } else {
        &[
            ("chown", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("exclude", FlagType::Strings),
            ("checksum", FlagType::String),
            ("keep-git-dir", FlagType::Bool),
        ]
    };
    let flags = Flags::parse(keyword, accepted, raw_flags)?;
    let mut words = match json_array(args)? {
        Some(words) => words,
        None => blank_words(&join_heredoc_operators(args)),
    };
    if words.len() < 2 {
        let given = if words.is_empty() {
            ""
        } else {
            " (only one argument given)"
        };
        return Err(format!(
            "{keyword} needs at least one source and a destination, e.g. {keyword} app.py /app/{given}"
        ));
    }
    let dest = words.pop().unwrap_or_default();
    if heredoc_word(&dest).ok().flatten().is_some() {
        return Err(format!(
            "{keyword} cannot write to a heredoc — the last argument must be a destination path"
        ));
    }
    let sources = words
        .into_iter()
        .filter(|w| !matches!(heredoc_word(w), Ok(Some(_))))
        .collect();
    Ok(Copy {
        sources,
        dest,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        excludes: flags.strings("exclude"),
        heredocs,
        parents: flags.bool("parents"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
    })
}

/// WORKDIR, USER, STOPSIGNAL, MAINTAINER: the whole rest of the line, which must not be empty.
fn single(keyword: &'static str, raw_flags: &[String], args: &str, what: &str) -> Result<String, String> {
    Flags::parse(keyword, &[], raw_flags)?;
    if args.is_empty() {
        return Err(format!("{keyword} needs {what}"));
    }
    Ok(args.to_string())
}

fn healthcheck(raw_flags: &[String], args: &str) -> Result<Healthcheck, String> {
    let flags = Flags::parse(
        "HEALTHCHECK",
        &[
            ("interval", FlagType::String),
            ("timeout", FlagType::String),
            ("start-period", FlagType::String),
            ("start-interval", FlagType::String),
            ("retries", FlagType::String),
        ],
        raw_flags,
    )?;
    let (kind, rest) = split_first_blank(args);
    match kind.to_ascii_uppercase().as_str() {
        "" => Err(
            "HEALTHCHECK needs CMD <command> or NONE, e.g. HEALTHCHECK CMD curl -f http://localhost/".into(),
        ),
        "NONE" => {
            if !rest.is_empty() || !raw_flags.is_empty() {
                return Err("HEALTHCHECK NONE takes no arguments or flags — remove them".into());
            }
            Ok(Healthcheck::None)
        }
        "CMD" => {
            if rest.is_empty() {
                return Err(
                    "HEALTHCHECK CMD needs a command, e.g. HEALTHCHECK CMD curl -f http://localhost/".into(),
                );
            }
            let test = command(
                "HEALTHCHECK CMD",
                rest,
                "HEALTHCHECK CMD curl -f http://localhost/",
            )?;
            let retries = match flags.string("retries") {
                None => None,
                Some(value) => match value.parse::<u32>() {
                    Ok(0) => None,
                    Ok(n) => Some(n),
                    Err(_) => {
                        return Err(format!(
                            "HEALTHCHECK --retries={value} is not a number — write e.g. --retries=3"
                        ))
                    }
                },
            };
            Ok(Healthcheck::Check {
                test,
                interval: interval(&flags, "interval")?,
                timeout: interval(&flags, "timeout")?,
                start_period: interval(&flags, "start-period")?,
                start_interval: interval(&flags, "start-interval")?,
                retries,
            })
        }
        other => Err(format!(
            "unknown HEALTHCHECK type \"{other}\" — use HEALTHCHECK CMD <command> or HEALTHCHECK NONE"
        )),
    }
}

/// A HEALTHCHECK duration flag; zero means "the default", as in docker, so it is `None`.
fn interval(flags: &Flags, name: &str) -> Result<Option<Duration>, String> {
    let Some(value) = flags.string(name) else {
        return Ok(None);
    };
    let keyword = flags.keyword();
    let duration = berth_units::go_duration(&value).ok_or_else(|| {
        format!("{keyword} --{name}={value} is not a duration — write e.g. 30s, 1m30s or 500ms")
    })?;
    if duration.is_zero() {
        return Ok(None);
    }
    if duration < Duration::from_millis(1) {
        return Err(format!(
            "{keyword} --{name}={value} is shorter than 1ms — use a longer duration"
        ));
    }
    Ok(Some(duration))
}
