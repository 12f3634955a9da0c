//! `.dockerignore` with docker's semantics (moby's patternmatcher): patterns cleaned like
//! `filepath.Clean` with a leading `/` dropped, `*` and `?` never crossing `/`, `[…]`
//! classes, `**` spanning any number of directories, `!` exceptions, the last matching
//! rule deciding, and a rule that matches a parent directory covering all it holds.

use crate::glob::{self, Token};

/// The rules of one `.dockerignore`, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

/// One non-comment, non-blank line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The line as written, blanks around it trimmed (`!` included).
    pub pattern: String,
    /// 1-based line number in the file.
    pub line: usize,
    /// An exception (`!pattern`): matching paths are kept.
    pub negated: bool,
    /// The pattern as docker matches it: cleaned, without `!` and leading `/`.
    pub cleaned: String,
    matcher: Matcher,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    /// The path equals the pattern.
    Exact,
    /// `dir/**`: anything under `dir/`.
    Prefix(Vec<char>),
    /// `**/name` or `**name`: docker's suffix shortcut.
    Suffix(Vec<char>),
    Glob(Vec<Token>),
    /// A pattern docker would refuse (unclosed `[`, trailing `\`, a lone `!`): matches nothing.
    Invalid,
}

impl DockerIgnore {
    /// Reads a `.dockerignore`: `#` at the start of a line is a comment, blank lines are
    /// skipped, a leading `!` makes an exception.
    pub fn parse(text: &str) -> DockerIgnore {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let written = raw.trim();
            if written.is_empty() {
                continue;
            }
            let (negated, body) = match written.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, written),
            };
            let cleaned = if body.is_empty() {
                String::new()
            } else {
                let cleaned = clean(body);
                match cleaned.strip_prefix('/') {
                    Some(rest) if !rest.is_empty() => rest.to_string(),
                    _ => cleaned,
                }
            };
            let matcher = if cleaned.is_empty() {
                Matcher::Invalid
            } else {
                compile(&cleaned)
            };
            rules.push(Rule {
                pattern: written.to_string(),
                line: index + 1,
                negated,
                cleaned,
                matcher,
            });
        }
        DockerIgnore { rules }
    }

    /// The rule that excludes `rel_path` (a path relative to the context root, `/`
    /// separated), or `None` when the path is kept. The last rule matching the path or
    /// one of its parent directories decides.
    pub fn excluded<'a>(&'a self, rel_path: &str) -> Option<&'a Rule> {
        let file = clean(rel_path);
        let file = file.trim_start_matches('/');
        let file: Vec<char> = file.chars().collect();
        let parents: Vec<usize> = file
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut decided: Option<&Rule> = None;
        for rule in &self.rules {
            let matches = rule.matches(&file) || parents.iter().any(|end| rule.matches(&file[..*end]));
            if matches {
                decided = Some(rule);
            }
        }
        decided.filter(|rule| !rule.negated)
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule is an exception: then an excluded directory may still hold kept
    /// files, and a context walk has to look inside it.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.negated)
    }

    /// Rules docker would refuse as malformed; they match nothing here.
    pub fn invalid_rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.matcher == Matcher::Invalid)
    }
}

impl Rule {
    fn matches(&self, path: &[char]) -> bool {
        match &self.matcher {
            Matcher::Exact => path.iter().copied().eq(self.cleaned.chars()),
            Matcher::Prefix(prefix) => path.starts_with(prefix),
            Matcher::Suffix(suffix) => {
                path.ends_with(suffix) || (suffix.first() == Some(&'/') && path == &suffix[1..])
            }
            Matcher::Glob(tokens) => glob::matches(tokens, path),
            Matcher::Invalid => false,
        }
    }
}

/// Compiles a cleaned pattern the way patternmatcher does, including its shortcuts:
/// a pattern without wildcards is an exact match, `dir/**` a prefix match and a
/// leading `**` a suffix match (which, like docker's, is not quite the glob).
fn compile(pattern: &str) -> Matcher {
    #[derive(PartialEq)]
    enum Shape {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut shape = Shape::Exact;
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if shape == Shape::Exact {
                        shape = Shape::Prefix;
                    } else {
                        tokens.push(Token::Star { crosses_slash: true });
                        shape = Shape::Glob;
                    }
                } else {
                    tokens.push(Token::AnyDirs);
                    shape = Shape::Glob;
                }
                if first {
                    shape = Shape::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star { crosses_slash: false });
                shape = Shape::Glob;
            }
            '?' => {
                tokens.push(Token::One { crosses_slash: false });
                shape = Shape::Glob;
            }
            '\\' => match chars.get(i) {
                Some(escaped) => {
                    tokens.push(Token::Literal(*escaped));
                    i += 1;
                    shape = Shape::Glob;
                }
                None => return Matcher::Invalid,
            },
            '[' => match glob::parse_class(&chars, &mut i) {
                Some(class) => {
                    tokens.push(class);
                    shape = Shape::Glob;
                }
                None => return Matcher::Invalid,
            },
            _ => tokens.push(Token::Literal(ch)),
        }
        first = false;
    }
    match shape {
        Shape::Exact => Matcher::Exact,
        Shape::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].chars().collect()),
        Shape::Suffix => Matcher::Suffix(pattern[2..].chars().collect()),
        Shape::Glob => Matcher::Glob(tokens),
    }
}

/// Go's `filepath.Clean` for `/`-separated paths: drops `.`, empty segments and a
/// trailing `/`, resolves `..`; `""` becomes `.`.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}
