//! Properties: the parser, the expander and the ignore matcher never panic, and what the
//! parser accepts it accepts the same way every time.

use berth_dockerfile::{expand, ignore::DockerIgnore, parse, Kind, ShellOrExec};
use proptest::prelude::*;

/// Text built from Dockerfile-ish pieces, so random input reaches deep into the parser
/// (continuations, heredocs, JSON, flags, quotes) rather than failing on the first word.
fn dockerfile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("FROM busybox\n".to_string()),
        Just("FROM a AS b\n".to_string()),
        Just("RUN <<EOF\n".to_string()),
        Just("RUN <<-\"EOF\" cat\n".to_string()),
        Just("EOF\n".to_string()),
        Just("\tEOF\n".to_string()),
        Just("COPY --from=x <<A <<B /d\n".to_string()),
        Just("CMD [\"a\", \n".to_string()),
        Just("ENV a=\"b c\" d\n".to_string()),
        Just("ONBUILD ".to_string()),
        Just("HEALTHCHECK --interval=1s CMD x\n".to_string()),
        Just("# escape=`\n".to_string()),
        Just("\\\n".to_string()),
        Just("`\n".to_string()),
        Just("# comment\n".to_string()),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("--".to_string()),
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("[".to_string()),
        Just("=".to_string()),
        "[ -~]{0,12}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn parse_never_panics_and_is_deterministic(text in dockerfile_text()) {
        let first = parse(&text);
        prop_assert_eq!(&first, &parse(&text));
        match first {
            Ok(dockerfile) => prop_assert!(!dockerfile.stages.is_empty()),
            Err(error) => {
                prop_assert!(error.line >= 1);
                prop_assert!(!error.message.is_empty());
            }
        }
    }

    #[test]
    fn parse_never_panics_on_any_string(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn expand_never_panics(word in r#"[ a-z$"'\\`{}:?+#%/*-]{0,24}"#, escape in prop_oneof![Just('\\'), Just('`')]) {
        let lookup = |name: &str| (name == "a").then(|| "x y".to_string());
        let single = expand::process_word(&word, &lookup, escape);
        let split = expand::process_words(&word, &lookup, escape);
        prop_assert_eq!(single.is_ok(), split.is_ok());
    }

    #[test]
    fn ignore_never_panics(patterns in r"[a-c*?!/.\[\]\\^ \n-]{0,40}", path in "[a-c*/.]{0,16}") {
        let ignore = DockerIgnore::parse(&patterns);
        if let Some(rule) = ignore.excluded(&path) {
            prop_assert!(!rule.negated);
        }
    }
}

/// One instruction of a generated Dockerfile: its words and what the parser must make of it.
#[derive(Debug, Clone)]
struct Generated {
    keyword: &'static str,
    words: Vec<String>,
}

fn word() -> impl Strategy<Value = String> {
    "[a-z0-9/._-]{1,8}".prop_filter("not a flag or a heredoc", |w| {
        !w.starts_with("--") && !w.contains("<<")
    })
}

fn instruction() -> impl Strategy<Value = Generated> {
    prop_oneof![
        prop::collection::vec(word(), 1..6).prop_map(|words| Generated {
            keyword: "RUN",
            words
        }),
        prop::collection::vec(("[A-Z_]{1,6}", word()), 1..4).prop_map(|pairs| Generated {
            keyword: "ENV",
            words: pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect(),
        }),
        prop::collection::vec(word(), 2..5).prop_map(|words| Generated {
            keyword: "COPY",
            words
        }),
        prop::collection::vec("[0-9]{1,5}(/udp)?", 1..4).prop_map(|words| Generated {
            keyword: "EXPOSE",
            words
        }),
        ("[A-Z_]{1,6}", prop::option::of(word())).prop_map(|(name, default)| Generated {
            keyword: "ARG",
            words: vec![match default {
                Some(d) => format!("{name}={d}"),
                None => name,
            }],
        }),
        word().prop_map(|w| Generated {
            keyword: "WORKDIR",
            words: vec![w]
        }),
    ]
}

/// How two words are joined: a space, or a continuation with optional comment and
/// blank lines inside it (which BuildKit drops).
fn separator() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(" ".to_string()),
        1 => Just(" \\\n  ".to_string()),
        1 => Just(" \\\n# inside\n  ".to_string()),
        1 => Just(" \\\n\n\t".to_string()),
        1 => Just(" \\  \n    # indented comment\n ".to_string()),
    ]
}

proptest! {
    /// Rendering instructions with random keyword case, continuations, comments and blank
    /// lines, then parsing, gives back the same instructions on the right lines.
    #[test]
    fn generated_dockerfiles_parse_back(
        body in prop::collection::vec((instruction(), prop::collection::vec(separator(), 8), any::<bool>(), any::<bool>()), 0..12)
    ) {
        let mut text = String::from("FROM busybox\n");
        let mut expected_lines = Vec::new();
        for (generated, separators, lowercase, comment_before) in &body {
            if *comment_before {
                text.push_str("# a comment line\n\n");
            }
            expected_lines.push(text.matches('\n').count() + 1);
            let keyword = if *lowercase { generated.keyword.to_lowercase() } else { generated.keyword.to_string() };
            text.push_str(&keyword);
            for (word, sep) in generated.words.iter().zip(separators.iter()) {
                text.push_str(sep);
                text.push_str(word);
            }
            text.push('\n');
        }
        let dockerfile = parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n--- text\n{text}")))?;
        let instructions = &dockerfile.stages[0].instructions;
        prop_assert_eq!(instructions.len(), body.len());
        for ((generated, ..), (instruction, line)) in body.iter().zip(instructions.iter().zip(&expected_lines)) {
            prop_assert_eq!(instruction.line, *line);
            prop_assert_eq!(instruction.kind.keyword(), generated.keyword);
            let words = generated.words.clone();
            match &instruction.kind {
                Kind::Run(run) => match &run.command {
                    ShellOrExec::Shell(shell) => {
                        prop_assert_eq!(shell.split_whitespace().collect::<Vec<_>>(), words)
                    }
                    other => prop_assert!(false, "shell form expected, got {:?}", other),
                },
                Kind::Env(pairs) => {
                    let rendered: Vec<String> = pairs.iter().map(|p| format!("{}={}", p.key, p.value)).collect();
                    prop_assert_eq!(rendered, words);
                }
                Kind::Copy(copy) => {
                    let mut all = copy.sources.clone();
                    all.push(copy.dest.clone());
                    prop_assert_eq!(all, words);
                }
                Kind::Expose(ports) => prop_assert_eq!(ports, &words),
                Kind::Arg(args) => {
                    let rendered: Vec<String> = args
                        .iter()
                        .map(|a| match &a.default {
                            Some(d) => format!("{}={d}", a.name),
                            None => a.name.clone(),
                        })
                        .collect();
                    prop_assert_eq!(rendered, words);
                }
                Kind::Workdir(path) => prop_assert_eq!(path, &words[0]),
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }
}
