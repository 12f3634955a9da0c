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
/// after the closing `]`. `bang_negates`: shell patterns accept `[!…]` as well as `[^…]`.
/// `None` when the class is not closed.
pub(crate) fn parse_class(chars: &[char], pos: &mut usize, bang_negates: bool) -> Option<Token> {
    let mut i = *pos;
    let negated = match chars.get(i) {
        Some('^') => true,
        Some('!') if bang_negates => true,
        _ => false,
    };
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

/// Whether `tokens` match all of `text`.
pub(crate) fn matches(tokens: &[Token], text: &[char]) -> bool {
    let Some((token, rest)) = tokens.split_first() else {
        return text.is_empty();
    };
    match token {
        Token::Literal(c) => text.first() == Some(c) && matches(rest, &text[1..]),
        Token::One { crosses_slash } => {
            text.first().is_some_and(|ch| *crosses_slash || *ch != '/') && matches(rest, &text[1..])
        }
        Token::Class { negated, ranges } => {
            text.first()
                .is_some_and(|ch| ranges.iter().any(|(lo, hi)| lo <= ch && ch <= hi) != *negated)
                && matches(rest, &text[1..])
        }
        Token::Star { crosses_slash } => {
            for i in 0..=text.len() {
                if i > 0 && !crosses_slash && text[i - 1] == '/' {
                    break;
                }
                if matches(rest, &text[i..]) {
                    return true;
                }
            }
            false
        }
        Token::AnyDirs => {
            matches(rest, text) || (0..text.len()).any(|i| text[i] == '/' && matches(rest, &text[i + 1..]))
        }
    }
}
