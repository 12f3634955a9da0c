//! Wildcard matching shared by `.dockerignore` rules and `${VAR#pattern}`-style
//! substitutions: a pattern compiled to tokens, matched by backtracking.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    Literal(char),
    /// `*`: any run of characters; `/` included only when `crosses_slash`.
    Star {
        crosses_slash: bool,
    },
    /// `?`: one character; `/` included only when `crosses_slash`.
    One {
        crosses_slash: bool,
    },
    /// `[a-z]`, `[^0-9]`.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/`: nothing, or any path ending in `/`.
    AnyDirs,
}

/// Parses a bracket expression starting just after `[` at `chars[*pos]`; leaves `*pos`
/// after the closing `]`. Go's `filepath.Match` rules, which docker checks patterns with:
/// `[^…]` negates, `\\` escapes, and an unescaped `-` or `]` cannot stand as a character
/// (`[]a]`, `[-x]`, `[a-b-c]` are malformed). `None` for a malformed or unclosed class.
pub(crate) fn parse_class(chars: &[char], pos: &mut usize) -> Option<Token> {
    let mut i = *pos;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    // One class character, escape resolved; `-` and `]` must be escaped.
    let escaped_char = |i: &mut usize| -> Option<char> {
        let ch = *chars.get(*i)?;
        *i += 1;
        match ch {
            '-' | ']' => None,
            '\\' => {
                let escaped = *chars.get(*i)?;
                *i += 1;
                Some(escaped)
            }
            _ => Some(ch),
        }
    };
    let mut ranges = Vec::new();
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            i += 1;
            break;
        }
        let lo = escaped_char(&mut i)?;
        let hi = if chars.get(i) == Some(&'-') {
            i += 1;
            escaped_char(&mut i)?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
    *pos = i;
    Some(Token::Class { negated, ranges })
}

/// Whether `tokens` match all of `text`. Failed (token, position) pairs are remembered,
/// so patterns with many stars stay polynomial.
pub(crate) fn matches(tokens: &[Token], text: &[char]) -> bool {
    let fixed_width = tokens
        .iter()
        .all(|t| !matches!(t, Token::Star { .. } | Token::AnyDirs));
    if fixed_width {
        // No backtracking possible: one token per character.
        return tokens.len() == text.len()
            && tokens.iter().zip(text).all(|(token, ch)| matches_one(token, *ch));
    }
    let mut failed = vec![false; (tokens.len() + 1) * (text.len() + 1)];
    matches_from(tokens, text, 0, 0, &mut failed)
}

fn matches_from(tokens: &[Token], text: &[char], t: usize, s: usize, failed: &mut [bool]) -> bool {
    let key = t * (text.len() + 1) + s;
    if failed[key] {
        return false;
    }
    let rest = t + 1;
    let found = match tokens.get(t) {
        None => s == text.len(),
        Some(token @ (Token::Literal(_) | Token::One { .. } | Token::Class { .. })) => {
            text.get(s).is_some_and(|ch| matches_one(token, *ch))
                && matches_from(tokens, text, rest, s + 1, failed)
        }
        Some(Token::Star { crosses_slash }) => {
            let mut end = s;
            loop {
                if matches_from(tokens, text, rest, end, failed) {
                    break true;
                }
                if end == text.len() || (!crosses_slash && text[end] == '/') {
                    break false;
                }
                end += 1;
            }
        }
        Some(Token::AnyDirs) => {
            matches_from(tokens, text, rest, s, failed)
                || (s..text.len()).any(|i| text[i] == '/' && matches_from(tokens, text, rest, i + 1, failed))
        }
    };
    if !found {
        failed[key] = true;
    }
    found
}

/// Whether a single-character token accepts `ch`.
fn matches_one(token: &Token, ch: char) -> bool {
    match token {
        Token::Literal(c) => *c == ch,
        Token::One { crosses_slash } => *crosses_slash || ch != '/',
        Token::Class { negated, ranges } => ranges.iter().any(|(lo, hi)| *lo <= ch && ch <= *hi) != *negated,
        Token::Star { .. } | Token::AnyDirs => false,
    }
}
