//! From physical lines to logical instructions: parser directives at the top, comments,
//! line continuations (with comment and empty lines inside them dropped, as BuildKit
//! does) and heredoc bodies.

use crate::ast::{Directives, Heredoc};
use crate::{instructions, ParseError};

/// The text split into physical lines (`\n` or `\r\n`), BOM removed.
pub(crate) struct Source<'a> {
    lines: Vec<&'a str>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str) -> Source<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        // A final newline does not start another line.
        if text.ends_with('\n') || text.is_empty() {
            lines.pop();
        }
        Source { lines }
    }

    /// The physical line `number` (1-based), or "" past the end.
    pub(crate) fn line(&self, number: usize) -> &'a str {
        number
            .checked_sub(1)
            .and_then(|i| self.lines.get(i))
            .copied()
            .unwrap_or("")
    }
}

/// One instruction's text, continuation lines joined.
pub(crate) struct LogicalLine {
    /// 1-based first physical line.
    pub(crate) line: usize,
    pub(crate) text: String,
    pub(crate) heredocs: Vec<Heredoc>,
}

pub(crate) struct Logical {
    pub(crate) directives: Directives,
    pub(crate) lines: Vec<LogicalLine>,
}

pub(crate) fn logical_lines(source: &Source<'_>) -> Result<Logical, ParseError> {
    let lines = &source.lines;
    let error = |line: usize, message: String| ParseError {
        line,
        source_line: source.line(line).to_string(),
        message,
    };
    let mut directives = Directives::default();
    let mut seen_escape = false;
    let mut in_directives = true;
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        i += 1;
        let start = i;
        if in_directives {
            match directive(raw.trim_start()) {
                Some((name, value)) => {
                    match name.as_str() {
                        "escape" => {
                            if seen_escape {
                                return Err(error(
                                    start,
                                    "only one escape parser directive can be used — remove the second one"
                                        .into(),
                                ));
                            }
                            seen_escape = true;
                            directives.escape = match value.as_str() {
                                "\\" => '\\',
                                "`" => '`',
                                other => {
                                    return Err(error(
                                        start,
                                        format!("invalid escape character \"{other}\" — use # escape=\\ or # escape=`"),
                                    ))
                                }
                            };
                        }
                        "syntax" => {
                            if directives.syntax.is_some() {
                                return Err(error(
                                    start,
                                    "only one syntax parser directive can be used — remove the second one"
                                        .into(),
                                ));
                            }
                            directives.syntax = Some(value);
                        }
                        // `# check=` configures BuildKit's linter; Berth has none, so it is accepted and ignored.
                        _ => {}
                    }
                    continue;
                }
                None => in_directives = false,
            }
        }
        let first = raw.trim_start();
        if is_comment(first) {
            continue;
        }
        let (mut text, mut ended) = trim_continuation(first, directives.escape);
        if ended && text.is_empty() {
            continue;
        }
        while !ended && i < lines.len() {
            let next = lines[i];
            i += 1;
            // Comment and empty lines inside a continued instruction are dropped.
            if is_comment(next.trim_start()) || next.trim_start().is_empty() {
                continue;
            }
            let (part, end) = trim_continuation(next, directives.escape);
            text.push_str(&part);
            ended = end;
        }
        if text.trim().is_empty() {
            continue;
        }
        let mut heredocs = Vec::new();
        let heads = instructions::heredoc_heads(&text).map_err(|m| error(start, m))?;
        for head in heads {
            let mut content = String::new();
            let mut terminated = false;
            while i < lines.len() {
                let body_line = lines[i];
                i += 1;
                let candidate = if head.strip_tabs {
                    body_line.trim_start_matches('\t')
                } else {
                    body_line
                };
                if candidate == head.name {
                    terminated = true;
                    break;
                }
                content.push_str(candidate);
                content.push('\n');
            }
            if !terminated {
                return Err(error(
                    start,
                    format!(
                        "unterminated heredoc <<{} — end it with a line containing only {}",
                        head.name, head.name
                    ),
                ));
            }
            heredocs.push(Heredoc {
                name: head.name,
                content,
                expand: head.expand,
                strip_tabs: head.strip_tabs,
            });
        }
        out.push(LogicalLine {
            line: start,
            text,
            heredocs,
        });
    }
    Ok(Logical {
        directives,
        lines: out,
    })
}

/// BuildKit's comment test: the first non-blank character is `#`.
fn is_comment(trimmed_start: &str) -> bool {
    trimmed_start.starts_with('#')
}

/// Removes a trailing escape character (plus trailing blanks after it); says whether the
/// instruction ends on this line.
/// As in BuildKit, an escape character that is itself escaped (`foo \\`) does not continue.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(rest) if !rest.ends_with(escape) => (rest.to_string(), false),
        _ => (line.to_string(), true),
    }
}

/// `# name=value` with a known directive name, lowercased. Any other line (an unknown
/// name included, which BuildKit treats as a comment) ends the directive section.
fn directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let name_len = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    let name = &rest[..name_len];
    if !name.chars().next()?.is_ascii_alphabetic() {
        return None;
    }
    let rest = rest[name_len..]
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')?;
    let value = rest.trim_matches([' ', '\t']);
    if value.is_empty() {
        return None;
    }
    let name = name.to_ascii_lowercase();
    matches!(name.as_str(), "escape" | "syntax" | "check").then(|| (name, value.to_string()))
}
