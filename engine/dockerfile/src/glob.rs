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

/// Parses a bracket expression (Go regexp syntax: `[^…]` negates, `\\` escapes) starting
/// just after `[` at `chars[*pos]`; leaves `*pos` after the closing `]`. `None` when the
/// class is not closed.
pub(crate) fn parse_class(chars: &[char], pos: &mut usize) -> Option<Token> {
    let mut i = *pos;
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let mut lo = *chars.get(i)?;
        i += 1;
        if lo == ']' && !first {
            break;
        }
        first = false;
        if lo == '\\' {
            lo = *chars.get(i)?;
            i += 1;
        }
        let mut hi = lo;
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            hi = chars[i + 1];
            i += 2;
            if hi == '\\' {
                hi = *chars.get(i)?;
                i += 1;
            }
        }
        ranges.push((lo, hi));
    }
    *pos = i;
    Some(Token::Class { negated, ranges })
}

/// Whether `tokens` match all of `text`. Failed (token, position) pairs are remembered,
/// so patterns with many stars stay polynomial.
pub(crate) fn matches(tokens: &[Token], text: &[char]) -> bool {
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
        Some(Token::Literal(c)) => text.get(s) == Some(c) && matches_from(tokens, text, rest, s + 1, failed),
        Some(Token::One { crosses_slash }) => {
            text.get(s).is_some_and(|ch| *crosses_slash || *ch != '/')
                && matches_from(tokens, text, rest, s + 1, failed)
        }
        Some(Token::Class { negated, ranges }) => {
            text.get(s)
                .is_some_and(|ch| ranges.iter().any(|(lo, hi)| lo <= ch && ch <= hi) != *negated)
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
