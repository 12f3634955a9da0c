//! Dockerfiles as BuildKit's Dockerfile frontend reads them: parser directives, line
//! continuations, comments, heredocs and every instruction, into an AST of raw values;
//! plus the shell-word expansion the builder applies at build time ([`expand`]) and
//! `.dockerignore` matching ([`ignore`]).
//!
//! Architecture invariant: no I/O, and nothing about images, containers or the build
//! itself — this crate only says what a text means.
//!
//! ```
//! use berth_dockerfile::{expand, parse, Kind};
//!
//! let dockerfile = parse("ARG TAG=12\nFROM debian:${TAG} AS base\nENV GREETING=\"hello world\"\n")?;
//! let stage = &dockerfile.stages[0];
//! assert_eq!((stage.name.as_deref(), stage.base.as_str()), (Some("base"), "debian:${TAG}"));
//! let Kind::Env(pairs) = &stage.instructions[0].kind else { unreachable!() };
//! // Values stay raw until the builder expands them with the variables of that step.
//! assert_eq!(pairs[0].value, "\"hello world\"");
//! assert_eq!(expand::process_word(&pairs[0].value, &|_| None, '\\')?, "hello world");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ast;
pub mod expand;
mod flags;
mod glob;
pub mod ignore;
mod instructions;
mod lines;
mod script;
mod words;

use std::fmt;

pub use ast::{
    ArgDecl, Copy, Directives, Dockerfile, Healthcheck, Heredoc, Instruction, KeyValue, Kind, Run,
    ShellOrExec, Stage,
};
pub use script::RunScript;

/// Why a Dockerfile was refused, with the line to show the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// 1-based line number where the offending instruction starts.
    pub line: usize,
    /// That line as written.
    pub source_line: String,
    /// One sentence: what is wrong and what to do.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dockerfile line {}: {}\n{:>4} | {}",
            self.line, self.message, self.line, self.source_line
        )
    }
}

/// Parses a Dockerfile. Values stay raw (see [`expand`] for build-time substitution).
pub fn parse(text: &str) -> Result<Dockerfile, ParseError> {
    let source = lines::Source::new(text);
    let parsed = lines::logical_lines(&source)?;
    // Where to point a "no FROM" error: the first instruction, else the top of the file.
    let first_line = parsed.lines.first().map_or(1, |l| l.line);
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for logical in parsed.lines {
        let error = |message: String| ParseError {
            line: logical.line,
            source_line: source.line(logical.line).to_string(),
            message,
        };
        let parsed = instructions::parse_instruction(
            &logical.text,
            logical.heredocs,
            parsed.directives.escape,
            logical.line,
        )
        .map_err(error)?;
        match parsed {
            instructions::Parsed::From { base, name, platform } => {
                if let Some(name) = &name {
                    if let Some(earlier) = stages.iter().find(|s| s.name.as_ref() == Some(name)) {
                        return Err(error(format!(
                            "duplicate stage name \"{name}\" (already used on line {}) — give each stage its own name",
                            earlier.line
                        )));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name,
                    base,
                    platform,
                    line: logical.line,
                    instructions: Vec::new(),
                });
            }
            instructions::Parsed::Instruction(kind) => {
                let instruction = Instruction {
                    line: logical.line,
                    original: logical.text,
                    kind,
                };
                match stages.last_mut() {
                    Some(stage) => stage.instructions.push(instruction),
                    None => match instruction.kind {
                        Kind::Arg(args) => global_args.extend(args),
                        other => {
                            return Err(error(format!(
                                "{} comes before the first FROM — only ARG may come before FROM",
                                other.keyword()
                            )))
                        }
                    },
                }
            }
        }
    }
    if stages.is_empty() {
        return Err(ParseError {
            line: first_line,
            source_line: source.line(first_line).to_string(),
            message:
                "the Dockerfile has no FROM instruction — start it with FROM <image>, e.g. FROM debian:12"
                    .to_string(),
        });
    }
    Ok(Dockerfile {
        directives: parsed.directives,
        global_args,
        stages,
    })
}
