//! `.dockerignore` matching against docker's documented examples and moby/patternmatcher rules.

use berth_dockerfile::ignore::DockerIgnore;

/// The line number of the rule excluding `path`, or `None` when it is kept.
fn rule_line(ignore: &DockerIgnore, path: &str) -> Option<usize> {
    ignore.excluded(path).map(|rule| rule.line)
}

#[test]
fn docker_documented_example() {
    let ignore = DockerIgnore::parse("# comment\n*/temp*\n*/*/temp*\ntemp?\n");
    assert_eq!(ignore.rules().len(), 3, "the comment is not a rule");
    assert_eq!(rule_line(&ignore, "somedir/temporary.txt"), Some(2));
    assert_eq!(rule_line(&ignore, "somedir/temp"), Some(2));
    assert_eq!(
        rule_line(&ignore, "somedir/temp/inner.txt"),
        Some(2),
        "a matched directory covers its contents"
    );
    assert_eq!(
        rule_line(&ignore, "temp.txt"),
        None,
        "*/ needs one directory level"
    );
    assert_eq!(rule_line(&ignore, "somedir/subdir/temporary.txt"), Some(3));
    assert_eq!(rule_line(&ignore, "a/b/c/temp"), None, "* never crosses /");
    assert_eq!(rule_line(&ignore, "tempa"), Some(4));
    assert_eq!(rule_line(&ignore, "tempb"), Some(4));
    assert_eq!(rule_line(&ignore, "temp"), None, "? needs exactly one character");
    assert_eq!(rule_line(&ignore, "tempab"), None);
}

#[test]
fn double_star_spans_directories() {
    let ignore = DockerIgnore::parse("**/*.go\n");
    assert!(
        ignore.excluded("main.go").is_some(),
        "**/ matches zero directories"
    );
    assert!(ignore.excluded("cmd/app/main.go").is_some());
    assert!(ignore.excluded("main.go.txt").is_none());
    let ignore = DockerIgnore::parse("a/**/b\n**/node_modules\nfoo/**\n");
    assert_eq!(rule_line(&ignore, "a/b"), Some(1));
    assert_eq!(rule_line(&ignore, "a/x/y/b"), Some(1));
    assert_eq!(rule_line(&ignore, "a/x/y/b/file"), Some(1));
    assert_eq!(rule_line(&ignore, "node_modules/x.js"), Some(2));
    assert_eq!(rule_line(&ignore, "web/node_modules/lib/x.js"), Some(2));
    assert_eq!(rule_line(&ignore, "foo/x"), Some(3));
    assert_eq!(
        rule_line(&ignore, "foo"),
        None,
        "foo/** matches what is under foo, not foo"
    );
    let everything = DockerIgnore::parse("**\n");
    assert!(everything.excluded("any/path/at/all").is_some());
}

#[test]
fn exceptions_and_last_rule_wins() {
    let ignore = DockerIgnore::parse("*.md\n!README.md\n");
    assert_eq!(rule_line(&ignore, "CHANGES.md"), Some(1));
    assert_eq!(rule_line(&ignore, "README.md"), None);

    let ignore = DockerIgnore::parse("*.md\n!README*.md\nREADME-secret.md\n");
    assert_eq!(rule_line(&ignore, "README-secret.md"), Some(3));
    assert_eq!(rule_line(&ignore, "README-public.md"), None);
    assert_eq!(rule_line(&ignore, "notes.md"), Some(1));

    let ignore = DockerIgnore::parse("docs\n!docs/keep.md\n");
    assert_eq!(
        rule_line(&ignore, "docs/keep.md"),
        None,
        "an exception inside an excluded directory"
    );
    assert_eq!(rule_line(&ignore, "docs/other.md"), Some(1));
    assert_eq!(rule_line(&ignore, "docs"), Some(1));
    assert!(ignore.has_exceptions());

    let ignore = DockerIgnore::parse("*.log\n*\n");
    assert_eq!(
        rule_line(&ignore, "a.log"),
        Some(2),
        "the last matching rule is the one named"
    );
}

#[test]
fn directory_patterns_exclude_contents() {
    let ignore = DockerIgnore::parse("node_modules\n.git\nbuild/\n");
    assert_eq!(rule_line(&ignore, "node_modules"), Some(1));
    assert_eq!(rule_line(&ignore, "node_modules/a/b.js"), Some(1));
    assert_eq!(rule_line(&ignore, ".git/HEAD"), Some(2));
    assert_eq!(
        rule_line(&ignore, "build/out/bin"),
        Some(3),
        "a trailing / is cleaned away"
    );
    assert_eq!(
        rule_line(&ignore, "src/node_modules/x"),
        None,
        "patterns are anchored at the root"
    );
    assert!(!ignore.has_exceptions());
}

#[test]
fn patterns_are_cleaned() {
    let ignore = DockerIgnore::parse("./foo\n/bar\nbaz/../qux\n  spaced.txt  \n//twice//x\n");
    let cleaned: Vec<&str> = ignore.rules().iter().map(|r| r.cleaned.as_str()).collect();
    assert_eq!(cleaned, ["foo", "bar", "qux", "spaced.txt", "twice/x"]);
    assert_eq!(
        ignore.rules()[0].pattern,
        "./foo",
        "the rule keeps its text as written"
    );
    assert_eq!(rule_line(&ignore, "foo"), Some(1));
    assert_eq!(rule_line(&ignore, "bar/x"), Some(2));
    assert_eq!(rule_line(&ignore, "qux"), Some(3));
    assert_eq!(rule_line(&ignore, "spaced.txt"), Some(4));
    assert_eq!(
        rule_line(&ignore, "./foo"),
        Some(1),
        "the queried path is cleaned too"
    );
    assert_eq!(rule_line(&ignore, "/bar"), Some(2));
}

#[test]
fn comments_blank_lines_and_line_numbers() {
    let text = "\n# a comment\n   \n*.tmp\n #not-a-comment\n!keep.tmp\n";
    let ignore = DockerIgnore::parse(text);
    let rules: Vec<(usize, &str, bool)> = ignore
        .rules()
        .iter()
        .map(|r| (r.line, r.pattern.as_str(), r.negated))
        .collect();
    assert_eq!(
        rules,
        [
            (4, "*.tmp", false),
            (5, "#not-a-comment", false),
            (6, "!keep.tmp", true)
        ]
    );
    assert_eq!(
        rule_line(&ignore, "#not-a-comment"),
        Some(5),
        "# only starts a comment in column one"
    );
    assert_eq!(rule_line(&ignore, "x.tmp"), Some(4));
    assert_eq!(rule_line(&ignore, "keep.tmp"), None);
}

#[test]
fn character_classes_and_escapes() {
    let ignore = DockerIgnore::parse("[a-c].txt\n[^0-9]x\n\\*.lit\n");
    assert_eq!(rule_line(&ignore, "b.txt"), Some(1));
    assert_eq!(rule_line(&ignore, "d.txt"), None);
    assert_eq!(rule_line(&ignore, "ax"), Some(2));
    assert_eq!(rule_line(&ignore, "5x"), None);
    assert_eq!(rule_line(&ignore, "*.lit"), Some(3));
    assert_eq!(rule_line(&ignore, "a.lit"), None, "an escaped * is literal");
}

#[test]
fn malformed_rules_match_nothing() {
    let ignore = DockerIgnore::parse("[abc\n!\nok\n");
    let invalid: Vec<usize> = ignore.invalid_rules().map(|r| r.line).collect();
    assert_eq!(invalid, [1, 2]);
    assert_eq!(rule_line(&ignore, "[abc"), None);
    assert_eq!(rule_line(&ignore, "ok"), Some(3));
}
