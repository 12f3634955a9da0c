//! Parse-time word splitting: BuildKit's three ways of cutting an instruction's text
//! (leading `--flags`, quote-aware raw words, plain whitespace).

/// Splits leading `--flag[=value]` words off `line` (quotes and `\` escapes inside a flag
/// are removed); returns the flags and the rest. A lone `--` ends the flags.
pub(crate) fn extract_flags(line: &str) -> (Vec<String>, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut flags = Vec::new();
    let mut pos = 0;
    loop {
        while pos < chars.len() && chars[pos].is_whitespace() {
            pos += 1;
        }
        if pos + 1 >= chars.len() || chars[pos] != '-' || chars[pos + 1] != '-' {
            return (flags, chars[pos.min(chars.len())..].iter().collect());
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut blank_ok = false;
        while pos < chars.len() {
            let ch = chars[pos];
            match quote {
                None if ch.is_whitespace() => break,
                None if ch == '\'' || ch == '"' => {
                    quote = Some(ch);
                    blank_ok = true;
                }
                Some(q) if ch == q => quote = None,
                _ if ch == '\\' => {
                    if pos + 1 < chars.len() {
                        pos += 1;
                        word.push(chars[pos]);
                    } else if quote.is_some() {
                        quote = None;
                    }
                }
                _ => word.push(ch),
            }
            pos += 1;
        }
        if word == "--" {
            return (flags, chars[pos..].iter().collect());
        }
        if blank_ok || !word.is_empty() {
            flags.push(word);
        }
    }
}

/// Quote-aware split into raw words: quotes and escapes stay in the word, but blanks
/// inside quotes or after the escape character do not split (BuildKit's `parseWords`,
/// used by ENV, LABEL and ARG).
pub(crate) fn raw_words(text: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut pos = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match quote {
            Some(q) if ch == q => quote = None,
            None if ch.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                continue;
            }
            None if ch == '\'' || ch == '"' => quote = Some(ch),
            _ => {}
        }
        // The escape character keeps the next character (blank or quote) in the word;
        // inside single quotes it is literal. At the very end it is dropped.
        if ch == escape && quote != Some('\'') {
            match chars.get(pos) {
                Some(&next) => {
                    word.push(ch);
                    word.push(next);
                    pos += 1;
                }
                None => quote = None,
            }
            continue;
        }
        word.push(ch);
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Splits on runs of blanks, ignoring quotes (BuildKit's `parseStringsWhitespaceDelimited`,
/// used by FROM, EXPOSE and the non-JSON forms of COPY, ADD and VOLUME).
pub(crate) fn blank_words(text: &str) -> Vec<String> {
    text.split([' ', '\t', '\u{b}', '\u{c}', '\r'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Splits `text` at its first run of blanks: `("ENV", "a b")`.
pub(crate) fn split_first_blank(text: &str) -> (&str, &str) {
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim_start()),
        None => (text, ""),
    }
}
