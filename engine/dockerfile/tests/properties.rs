//! Properties: the parser, the expander and the ignore matcher never panic, and what the
//! parser accepts it accepts the same way every time.

use berth_dockerfile::{expand, ignore::DockerIgnore, parse};
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
