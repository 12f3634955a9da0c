//! Build-time expansion of Dockerfile words with BuildKit's shell-lexer rules: quote
//! removal (`'single'` literal, `"double"` expanding), the escape character, `$VAR`,
//! `${VAR}` and the `${VAR:-default}` family. Unset variables expand to nothing.
//!
//! The builder calls this with a lookup over the ARG/ENV values in force at that step.

use crate::glob::{self, Token};

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("a {0} quote is never closed in {1:?} — add the closing quote")]
    UnterminatedQuote(&'static str, String),
    #[error("a ${{…}} substitution is missing its '}}' in {0:?} — close the brace")]
    MissingBrace(String),
    #[error("bad substitution in {0:?} — write ${{NAME}} with a variable name inside the braces")]
    BadSubstitution(String),
    #[error(
        "unsupported modifier ({modifier}) in substitution {word:?} — use :-, -, :+, +, :?, ?, #, %, or /"
    )]
    UnsupportedModifier { modifier: String, word: String },
    /// `${NAME:?message}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required { name: String, message: String },
}

/// Expands `word` into one string (blanks kept, quotes removed).
pub fn process_word(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    Lexer::new(word, lookup, escape).process().map(|(text, _)| text)
}

/// Expands `word` and splits the result into words at unquoted blanks, the way BuildKit
/// does for EXPOSE, VOLUME and similar lists: `"a b" c` → `["a b", "c"]`; a variable's
/// value is split too (`$V` with `V="x y"` → `["x", "y"]`); empty words are dropped.
pub fn process_words(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new(word, lookup, escape).process().map(|(_, words)| words)
}

/// Expands the body of an unquoted heredoc COPY/ADD source (`COPY <<EOF /f`), like
/// BuildKit's raw expansion: variables and the escape character are processed, but quotes
/// are ordinary characters and stay (`"$A"` → `"value"`). A RUN heredoc is not expanded by
/// the builder at all: the shell reads it.
pub fn process_heredoc(
    content: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    escape: char,
) -> Result<String, ExpandError> {
    let mut lexer = Lexer::new(content, lookup, escape);
    lexer.keep_quotes = true;
    lexer.process().map(|(text, _)| text)
}

/// Collects words while the lexer runs: characters from quotes and escapes never split.
#[derive(Default)]
struct Words {
    word: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.word.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, text: &str) {
        text.chars().for_each(|ch| self.add_char(ch));
    }

    fn add_raw_string(&mut self, text: &str) {
        self.word.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(self.word);
        }
        self.words
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    escape: char,
    word: &'a str,
    /// Quotes are ordinary characters (heredoc bodies).
    keep_quotes: bool,
}

impl<'a> Lexer<'a> {
    fn new(word: &'a str, lookup: &'a dyn Fn(&str) -> Option<String>, escape: char) -> Lexer<'a> {
        Lexer {
            chars: word.chars().collect(),
            pos: 0,
            lookup,
            escape,
            word,
            keep_quotes: false,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn process(&mut self) -> Result<(String, Vec<String>), ExpandError> {
        let (text, words) = self.process_until(None, false)?;
        Ok((text, words.finish()))
    }

    /// Processes up to `stop` (consumed) or the end. `raw_escapes` keeps escape
    /// characters in the result (for patterns, where they still mean "literal").
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Words), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words));
            }
            match ch {
                '\'' if !self.keep_quotes => {
                    let text = self.single_quoted()?;
                    words.add_raw_string(&text);
                    result.push_str(&text);
                }
                '"' if !self.keep_quotes => {
                    let text = self.double_quoted()?;
                    words.add_raw_string(&text);
                    result.push_str(&text);
                }
                '$' => {
                    let text = self.dollar()?;
                    words.add_string(&text);
                    result.push_str(&text);
                }
                _ => {
                    self.next();
                    if ch == self.escape {
                        if raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // An escape character at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if stop.is_some() {
            return Err(ExpandError::MissingBrace(self.word.to_string()));
        }
        Ok((result, words))
    }

    /// `'…'`: everything literal, no escapes.
    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        self.next();
        let mut text = String::new();
        loop {
            match self.next() {
                None => return Err(ExpandError::UnterminatedQuote("single", self.word.to_string())),
                Some('\'') => return Ok(text),
                Some(ch) => text.push(ch),
            }
        }
    }

    /// `"…"`: literal except `$` expansions; the escape character escapes only `"`, `$`
    /// and itself, and is kept before anything else.
    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        self.next();
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(ExpandError::UnterminatedQuote("double", self.word.to_string())),
                Some('"') => {
                    self.next();
                    return Ok(text);
                }
                Some('$') => text.push_str(&self.dollar()?),
                Some(ch) => {
                    self.next();
                    if ch == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.escape => {
                                self.next();
                                text.push(next);
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    text.push(ch);
                }
            }
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// `$NAME`, `${NAME}`, `${NAME<op>word}`; the `$` is at `pos`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(self.get(&name).unwrap_or_default());
        }
        self.next();
        match self.peek() {
            None => return Err(ExpandError::MissingBrace(self.word.to_string())),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution(self.word.to_string())),
            Some(_) => {}
        }
        let name = self.name();
        let Some(mut op) = self.next() else {
            return Err(ExpandError::MissingBrace(self.word.to_string()));
        };
        let mut modifier = op.to_string();
        let mut null_is_unset = false;
        match op {
            '}' => return Ok(self.get(&name).unwrap_or_default()),
            ':' => {
                null_is_unset = true;
                let Some(next) = self.next() else {
                    return Err(ExpandError::MissingBrace(self.word.to_string()));
                };
                op = next;
                modifier.push(op);
            }
            '/' => return self.replace(&name),
            _ => {}
        }
        if !matches!(op, '-' | '+' | '?' | '#' | '%') {
            return Err(ExpandError::UnsupportedModifier {
                modifier,
                word: self.word.to_string(),
            });
        }
        let (word, _) = self.process_until(Some('}'), op == '#' || op == '%')?;
        let value = self.get(&name);
        let unset = match &value {
            None => true,
            Some(v) => null_is_unset && v.is_empty(),
        };
        match op {
            '-' => Ok(if unset { word } else { value.unwrap_or_default() }),
            '+' => Ok(if unset { String::new() } else { word }),
            '?' if unset => {
                let message = if !word.is_empty() {
                    word
                } else if value.is_none() {
                    "is not allowed to be unset".to_string()
                } else {
                    "is not allowed to be empty".to_string()
                };
                Err(ExpandError::Required { name, message })
            }
            '?' => Ok(value.unwrap_or_default()),
            _ => {
                let value = value.unwrap_or_default();
                let (longest, pattern) = match word.strip_prefix(op) {
                    Some(pattern) => (true, pattern),
                    None => (false, word.as_str()),
                };
                Ok(trim_pattern(
                    &value,
                    &shell_pattern(pattern, self.escape),
                    op == '#',
                    longest,
                ))
            }
        }
    }

    /// `${NAME/pattern/replacement}` (first match) and `${NAME//pattern/replacement}` (all).
    fn replace(&mut self, name: &str) -> Result<String, ExpandError> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let (pattern, _) = self.process_until(Some('/'), true)?;
        let (replacement, _) = self.process_until(Some('}'), true)?;
        let value: Vec<char> = self.get(name).unwrap_or_default().chars().collect();
        let tokens = shell_pattern(&pattern, self.escape);
        // Go's regexp replacement: leftmost match, longest at that position; an empty match
        // right after a previous match is skipped, and an empty one still replaces.
        let mut out = String::new();
        let mut pos = 0;
        let mut last_end: Option<usize> = None;
        let mut replaced = false;
        while pos <= value.len() {
            if replaced && !all {
                out.extend(&value[pos..]);
                break;
            }
            let found = (pos..=value.len())
                .rev()
                .find(|end| glob::matches(&tokens, &value[pos..*end]));
            match found {
                Some(end) if !(end == pos && last_end == Some(pos)) => {
                    out.push_str(&replacement);
                    replaced = true;
                    last_end = Some(end);
                    if end > pos {
                        pos = end;
                        continue;
                    }
                }
                _ => {}
            }
            out.extend(value.get(pos));
            pos += 1;
        }
        Ok(out)
    }

    /// A variable name: letters, digits and `_`; or all leading digits (`$1`); or one
    /// special parameter character (`$@`, `$#` …).
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !(ch.is_alphanumeric() || ch == '_') {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }
}

/// Compiles a `${V#p}`-style pattern as BuildKit does: `*` and `?` are wildcards that also
/// match `/`, the escape character makes the next character literal, and everything else,
/// `[` included (BuildKit has no bracket expressions here), is literal.
fn shell_pattern(pattern: &str, escape: char) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = pattern.chars();
    while let Some(ch) = chars.next() {
        tokens.push(match ch {
            '*' => Token::Star { crosses_slash: true },
            '?' => Token::One { crosses_slash: true },
            _ if ch == escape => match chars.next() {
                Some(escaped) => Token::Literal(escaped),
                None => break,
            },
            _ => Token::Literal(ch),
        });
    }
    tokens
}

/// `${V#p}` / `${V##p}` (prefix) and `${V%p}` / `${V%%p}` (suffix) removal.
fn trim_pattern(value: &str, tokens: &[Token], prefix: bool, longest: bool) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let mut cuts: Vec<usize> = (0..=n).collect();
    if longest == prefix {
        cuts.reverse();
    }
    for cut in cuts {
        let (matched, kept) = if prefix {
            (&chars[..cut], &chars[cut..])
        } else {
            (&chars[cut..], &chars[..cut])
        };
        if glob::matches(tokens, matched) {
            return kept.iter().collect();
        }
    }
    value.to_string()
}
