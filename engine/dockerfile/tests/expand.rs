//! `expand::process_word` / `process_words` against BuildKit's shell-lexer semantics.

use berth_dockerfile::expand::{process_word, process_words, ExpandError};

/// FOO=bar, EMPTY="", V="x y", P="a/b/c"; everything else unset.
fn lookup(name: &str) -> Option<String> {
    match name {
        "FOO" => Some("bar".into()),
        "EMPTY" => Some(String::new()),
        "V" => Some("x y".into()),
        "P" => Some("a/b/c".into()),
        "WIN" => Some(r"C:\app".into()),
        _ => None,
    }
}

fn word(text: &str) -> String {
    process_word(text, &lookup, '\\').unwrap_or_else(|e| panic!("{text:?} failed: {e}"))
}

fn words(text: &str) -> Vec<String> {
    process_words(text, &lookup, '\\').unwrap_or_else(|e| panic!("{text:?} failed: {e}"))
}

fn error(text: &str) -> ExpandError {
    match process_word(text, &lookup, '\\') {
        Ok(value) => panic!("{text:?} expanded to {value:?} instead of failing"),
        Err(e) => e,
    }
}

#[test]
fn plain_variables() {
    assert_eq!(word("hello"), "hello");
    assert_eq!(word("$FOO"), "bar");
    assert_eq!(word("${FOO}"), "bar");
    assert_eq!(word("${FOO}x"), "barx");
    assert_eq!(word("$FOO/x"), "bar/x");
    assert_eq!(word("$FOOx"), "", "the name runs to the last letter, digit or _");
    assert_eq!(word("a${NOPE}b"), "ab", "unset expands to nothing");
    assert_eq!(word("a$NOPE b"), "a b");
    assert_eq!(word("$"), "$");
    assert_eq!(word("a$ b"), "a$ b");
    assert_eq!(word("cost: 5$"), "cost: 5$");
    assert_eq!(word("$1x"), "x", "positional parameters are never set");
}

#[test]
fn default_and_alternative_operators() {
    assert_eq!(word("${NOPE:-def}"), "def");
    assert_eq!(word("${EMPTY:-def}"), "def", ":- treats empty as unset");
    assert_eq!(word("${FOO:-def}"), "bar");
    assert_eq!(word("${NOPE-def}"), "def");
    assert_eq!(word("${EMPTY-def}"), "", "- only replaces unset");
    assert_eq!(word("${FOO-def}"), "bar");

    assert_eq!(word("${FOO:+alt}"), "alt");
    assert_eq!(word("${EMPTY:+alt}"), "");
    assert_eq!(word("${NOPE:+alt}"), "");
    assert_eq!(word("${EMPTY+alt}"), "alt", "+ only needs the variable to be set");
    assert_eq!(word("${NOPE+alt}"), "");

    assert_eq!(word("${NOPE:-$FOO}"), "bar", "the default word is expanded");
    assert_eq!(word("${NOPE:-${EMPTY:-deep}}"), "deep");
    assert_eq!(word("${NOPE:-\"a b\"}"), "a b");
    assert_eq!(word("${NOPE:-}"), "");
}

#[test]
fn required_operator() {
    assert_eq!(
        error("${NOPE:?must be set}"),
        ExpandError::Required {
            name: "NOPE".into(),
            message: "must be set".into()
        }
    );
    assert_eq!(error("${NOPE?}").to_string(), "NOPE: is not allowed to be unset");
    assert_eq!(
        error("${EMPTY:?}").to_string(),
        "EMPTY: is not allowed to be empty"
    );
    assert_eq!(word("${EMPTY?}"), "", "? without : accepts an empty value");
    assert_eq!(word("${FOO:?x}"), "bar");
}

#[test]
fn pattern_operators() {
    assert_eq!(word("${P#*/}"), "b/c");
    assert_eq!(word("${P##*/}"), "c");
    assert_eq!(word("${P%/*}"), "a/b");
    assert_eq!(word("${P%%/*}"), "a");
    assert_eq!(word("${P#x}"), "a/b/c", "no match leaves the value");
    assert_eq!(word("${P/b/X}"), "a/X/c");
    assert_eq!(
        word("${P//\\//-}"),
        "a-b-c",
        "an escaped / is part of the pattern"
    );
    assert_eq!(word("${P/\\//-}"), "a-b/c", "one / replaces the first match only");
    assert_eq!(word("${P/?/Z}"), "Z/b/c");
}

#[test]
fn quotes() {
    assert_eq!(word("'$FOO'"), "$FOO", "single quotes are literal");
    assert_eq!(word(r"'a\b'"), r"a\b", "no escapes inside single quotes");
    assert_eq!(word("\"$FOO\""), "bar", "double quotes expand");
    assert_eq!(word(r#""a \"q\" b""#), r#"a "q" b"#);
    assert_eq!(word(r#""\$FOO""#), "$FOO");
    assert_eq!(
        word(r#""a\nb""#),
        r"a\nb",
        "other escapes stay inside double quotes"
    );
    assert_eq!(word(r#""a\\b""#), r"a\b");
    assert_eq!(word(r#"pre"mid $FOO"'post $FOO'"#), "premid barpost $FOO");
    assert_eq!(word("\"\""), "");
}

#[test]
fn escapes() {
    assert_eq!(word(r"\$FOO"), "$FOO");
    assert_eq!(word(r"a\ b"), "a b");
    assert_eq!(word(r"\'x"), "'x");
    assert_eq!(word(r"abc\"), "abc", "a trailing escape is dropped");
    assert_eq!(word(r"\\"), r"\");
}

#[test]
fn backtick_escape() {
    let w = |text: &str| process_word(text, &lookup, '`').expect("expands");
    assert_eq!(w("`$FOO"), "$FOO");
    assert_eq!(
        w(r"C:\path\$FOO"),
        r"C:\path\bar",
        "backslash is an ordinary character"
    );
    assert_eq!(w("\"a `\"q`\" b\""), "a \"q\" b");
    assert_eq!(w("a` b"), "a b");
    assert_eq!(w("$WIN"), r"C:\app");
}

#[test]
fn syntax_errors() {
    assert!(matches!(
        error("'abc"),
        ExpandError::UnterminatedQuote("single", _)
    ));
    assert!(matches!(
        error("\"abc"),
        ExpandError::UnterminatedQuote("double", _)
    ));
    assert!(matches!(error("${FOO"), ExpandError::MissingBrace(_)));
    assert!(matches!(error("${NOPE:-abc"), ExpandError::MissingBrace(_)));
    assert!(matches!(error("${}"), ExpandError::BadSubstitution(_)));
    assert!(matches!(error("${:-x}"), ExpandError::BadSubstitution(_)));
    assert!(matches!(
        error("${FOO^}"),
        ExpandError::UnsupportedModifier { .. }
    ));
    let message = error("'abc").to_string();
    assert!(message.contains("single quote is never closed"), "{message}");
}

#[test]
fn words_split_after_expansion() {
    assert_eq!(words("a b  c"), ["a", "b", "c"]);
    assert_eq!(words("  a  "), ["a"]);
    assert_eq!(words("\"a b\" c"), ["a b", "c"], "quoted blanks stay in one word");
    assert_eq!(words("'a  b'"), ["a  b"]);
    assert_eq!(words(r"a\ b c"), ["a b", "c"], "escaped blanks stay in one word");
    assert_eq!(words("$V"), ["x", "y"], "an unquoted value is split");
    assert_eq!(words("\"$V\""), ["x y"], "a quoted value is not");
    assert_eq!(words("pre$V"), ["prex", "y"]);
    assert_eq!(words("80/tcp ${NOPE} 443"), ["80/tcp", "443"]);
    assert_eq!(words("\"\""), Vec::<String>::new(), "empty words are dropped");
    assert_eq!(words("a\"\"b"), ["ab"]);
    assert_eq!(words(""), Vec::<String>::new());
}

#[test]
fn heredoc_bodies_keep_quotes() {
    use berth_dockerfile::expand::process_heredoc;
    let body = |text: &str| process_heredoc(text, &lookup, '\\').expect("expands");
    assert_eq!(
        body("echo \"$FOO\" '$FOO'\n"),
        "echo \"bar\" 'bar'\n",
        "quotes stay, variables expand"
    );
    assert_eq!(
        body("price: \\$5\n"),
        "price: $5\n",
        "the escape character still escapes"
    );
    assert_eq!(body("${NOPE:-\"d\"}\n"), "\"d\"\n");
    assert_eq!(
        body("it's fine\n"),
        "it's fine\n",
        "an unmatched quote is just a character"
    );
}

/// Cases BuildKit's own lexer tests pin down, with a lookup over explicit pairs.
#[test]
fn buildkit_pattern_edge_cases() {
    let with = |pairs: &'static [(&'static str, &'static str)], text: &str| {
        let lookup = |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        process_word(text, &lookup, '\\')
    };
    let ok = |pairs, text: &str| with(pairs, text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(
        ok(&[("F", "()[]{}^$.*?|\\x")], r"${F#()[]{\}^$.\*\?|\\}"),
        "x",
        "regex metacharacters are literal"
    );
    assert_eq!(ok(&[("F", "xx**")], r"${F%%\**}"), "xx");
    assert_eq!(ok(&[("F", "xxyy")], "${F#*x*y}"), "y");
    assert_eq!(ok(&[("F", "xxyy")], "${F#*}"), "xxyy");
    assert_eq!(ok(&[("F", "xxyy")], "${F#}"), "xxyy");
    assert_eq!(ok(&[("F", "xxyy")], "${F##*x}"), "yy");
    assert_eq!(ok(&[("F", "???y")], r"${F#?\?}"), "?y");
    assert_eq!(ok(&[("F", "a***yy*")], r"${F%%\**\*}"), "a");
    assert_eq!(ok(&[("F", "xxyy")], "${A:-.}${F%x}${A:-.}"), ".xxyy.");
    let needle: &[(&str, &str)] = &[("F", "/foo*/*/*.txt"), ("N", r"\*/")];
    assert_eq!(
        ok(needle, "${F/$N/.} - ${F//$N/.}"),
        "/foo.*/*.txt - /foo..*.txt",
        "a pattern from a variable"
    );
    let tmp: &[(&str, &str)] = &[("F", "/tmp/tmp/bar.txt"), ("N", "/tmp")];
    assert_eq!(ok(tmp, "${F/$N/} - ${F//$N/}"), "/tmp/bar.txt - /bar.txt");
    let any: &[(&str, &str)] = &[("F", "/a/foo/b/c.txt"), ("N", "/?/"), ("R", "/")];
    assert_eq!(ok(any, "${F/$N/$R} - ${F//$N/$R}"), "/foo/b/c.txt - /foo/c.txt");
    assert_eq!(
        ok(&[("F", "/tmp/foo.txt")], r"${F//\//\/}"),
        r"\/tmp\/foo.txt",
        "the replacement keeps escapes"
    );
    assert_eq!(
        ok(&[("F", "xxyy"), ("B", "")], "${F/$B/ww}"),
        "wwxxyy",
        "an empty pattern matches at the start"
    );
    assert_eq!(ok(&[("F", "xxyy")], "${F///}"), "xxyy");
    assert_eq!(ok(&[], "${F///}"), "");
    assert!(
        with(&[("F", "xxyy")], "${F//ww}").is_err(),
        "missing the second /"
    );
    assert!(with(&[("F", "xxyy")], "${F//}").is_err());
    assert!(with(&[("F", "x")], "${F=aaa}").is_err(), "= is not supported");
    assert!(with(&[], "${F=}").is_err());
    let message = with(&[("ARG", "x")], "${VAR:?message here$ARG}")
        .expect_err("VAR is unset")
        .to_string();
    assert!(message.contains("message herex"), "{message}");
    let release = "app-${VERSION}.${OS}-${ARCH}${VARIANT:+-${VARIANT}}.tar.gz";
    let vars: &[(&str, &str)] = &[
        ("VERSION", "v1.2.3"),
        ("OS", "linux"),
        ("ARCH", "arm"),
        ("VARIANT", "v7"),
    ];
    assert_eq!(ok(vars, release), "app-v1.2.3.linux-arm-v7.tar.gz");
    assert_eq!(
        ok(&[("VERSION", "v1"), ("OS", "linux"), ("ARCH", "amd64")], release),
        "app-v1.linux-amd64.tar.gz"
    );
}
