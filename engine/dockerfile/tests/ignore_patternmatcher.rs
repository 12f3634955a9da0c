//! `.dockerignore` semantics pinned to what moby/patternmatcher decides for the same
//! pattern and path (its `MatchesOrParentMatches` and its `filepath.Match` checks).

use berth_dockerfile::ignore::DockerIgnore;

fn excluded(patterns: &[&str], path: &str) -> bool {
    DockerIgnore::parse(&patterns.join("\n")).excluded(path).is_some()
}

/// Each (pattern, path, excluded?) row, the pattern alone in a `.dockerignore`.
fn assert_table(cases: &[(&str, &str, bool)]) {
    for (pattern, path, expected) in cases {
        assert_eq!(
            excluded(&[pattern], path),
            *expected,
            "pattern {pattern:?} on {path:?}"
        );
    }
}

#[test]
fn single_patterns() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "dir/file", true),
        ("**/", "file", true),
        ("**/", "dir/file/", true),
        ("**/**", "dir/file", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/dir2/file", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/*", "dir/dir2/file/", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**file", "dir/dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc.def", "abcZdef", false),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a\\\\", "a\\", true),
        ("a\\*b", "a*b", true),
        ("*.go", ".", false),
    ];
    assert_table(cases);
}

#[test]
fn several_patterns() {
    assert!(
        !excluded(&["**", "!util/docker/web"], "util/docker/web/foo"),
        "an exception on a parent dir"
    );
    assert!(excluded(
        &["**", "!util/docker/web", "util/docker/web/foo"],
        "util/docker/web/foo"
    ));
    assert!(!excluded(
        &["**", "!dist/*.whl"],
        "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"
    ));
    assert!(
        excluded(&["!fileutils.go", "*.go"], "fileutils.go"),
        "order matters: the later rule wins"
    );
    assert!(!excluded(&["*.go", "!fileutils.go"], "fileutils.go"));
    assert!(!excluded(&["docs", "!docs/README.md"], "docs/README.md"));
    assert!(!excluded(&["docs/", "!docs/README.md"], "docs/README.md"));
    assert!(!excluded(&["docs/*", "!docs/README.md"], "docs/README.md"));
    assert!(!excluded(&[], "any/path/there"));
}

/// Go's `filepath.Match` cases: the glob itself, with `*` and `?` stopping at `/`.
#[test]
fn filepath_match_semantics() {
    let cases: &[(&str, &str, bool)] = &[
        ("abc", "abc", true),
        ("*", "abc", true),
        ("*c", "abc", true),
        ("a*", "a", true),
        ("a*", "abc", true),
        ("a*/b", "abc/b", true),
        ("a*/b", "a/c/b", false),
        ("a*b*c*d*e*/f", "axbxcxdxe/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true),
        ("a*b?c*x", "abxbbxdbxebxczzy", false),
        ("ab[c]", "abc", true),
        ("ab[b-d]", "abc", true),
        ("ab[e-g]", "abc", false),
        ("ab[^c]", "abc", false),
        ("ab[^b-d]", "abc", false),
        ("ab[^e-g]", "abc", true),
        ("a\\*b", "ab", false),
        ("a?b", "a☺b", true),
        ("a[^a]b", "a☺b", true),
        ("a???b", "a☺b", false),
        ("[a-ζ]*", "α", true),
        ("*[a-ζ]", "A", false),
        ("a?b", "a/b", false),
        ("a*b", "a/b", false),
        ("[\\]a]", "]", true),
        ("[\\-]", "-", true),
        ("[x\\-]", "x", true),
        ("[x\\-]", "-", true),
        ("[x\\-]", "z", false),
        ("[\\-x]", "-", true),
        ("*x", "xxx", true),
    ];
    assert_table(cases);
}

#[test]
fn malformed_patterns_are_reported_and_match_nothing() {
    for pattern in [
        "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "!",
    ] {
        let ignore = DockerIgnore::parse(pattern);
        assert_eq!(
            ignore.invalid_rules().count(),
            1,
            "{pattern:?} should be malformed"
        );
        for path in ["a", "ab", "]", "-", "x"] {
            assert!(ignore.excluded(path).is_none(), "{pattern:?} matched {path:?}");
        }
    }
}
