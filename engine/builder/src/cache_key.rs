//! Build cache keys: everything a step's result depends on, hashed with its parent.
//!
//! A key is `sha256(parent image ID, "\n", the step's text)`. The parent ID already covers
//! every earlier step and the base image (config and layers: ENV, WORKDIR, USER, SHELL …
//! as they stand), so the text only has to name what this step adds: its history line
//! (for RUN that includes the build args in scope; for COPY/ADD the digest of the selected
//! sources' paths, modes and contents, and the destination) and whatever changes its
//! result without showing in that line unambiguously. History lines join lists with
//! spaces, so where two different steps can read alike (`RUN ["a b"]` and `RUN ["a",
//! "b"]`, `ENV A="1 B=2"` and `ENV A=1 B=2`) the values themselves are added as JSON.
//!
//! Deliberately left out, as docker leaves them out: times and owners of context files,
//! the proxy build args, and the build's `--network` (a RUN's own `--network` counts).

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The key of one step, as stored in the build cache (hex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey(String);

/// Everything a RUN step's result depends on besides its parent.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct RunInputs<'a> {
    /// The history line (see [`run_history`]).
    #[serde(skip)]
    pub history: &'a str,
    /// The command as run: the history line joins it with spaces.
    pub argv: &'a [String],
    /// The build args in scope, in the RUN's environment: the line cannot tell
    /// `A="1 B=2"` from `A=1 B=2`.
    pub build_args: &'a [(String, String)],
    /// A heredoc script run as a file: its name and content.
    pub script: Option<(&'a str, &'a str)>,
    /// The RUN's own `--network`.
    pub network: Option<&'a str>,
}

impl CacheKey {
    fn of(parent: &str, text: &str) -> CacheKey {
        let mut h = Sha256::new();
        h.update(parent.as_bytes());
        h.update(b"\n");
        h.update(text.as_bytes());
        CacheKey(hex::encode(h.finalize()))
    }

    /// A step whose history line says everything it does: CMD, USER, EXPOSE, WORKDIR,
    /// ARG, STOPSIGNAL, HEALTHCHECK, ONBUILD, MAINTAINER.
    pub(crate) fn line(parent: &str, created_by: &str) -> CacheKey {
        CacheKey::of(parent, created_by)
    }

    /// A config step whose history line can read alike for different results: ENV and
    /// LABEL (the pairs), VOLUME and SHELL (the list), ENTRYPOINT (whether it drops an
    /// inherited CMD). `detail` is what the line leaves out.
    pub(crate) fn config(parent: &str, created_by: &str, detail: &impl Serialize) -> CacheKey {
        let detail = serde_json::to_string(detail).expect("serializable");
        CacheKey::of(parent, &format!("{created_by}\n{detail}"))
    }

    /// RUN: the history line and the inputs it renders ambiguously or not at all (see
    /// [`RunInputs`]). Proxy build args are deliberately left out, as docker does.
    pub(crate) fn run(parent: &str, inputs: &RunInputs<'_>) -> CacheKey {
        let detail = serde_json::to_string(inputs).expect("serializable");
        CacheKey::of(parent, &format!("RUN {}\n{detail}", inputs.history))
    }

    /// COPY/ADD: the history line (sources' content digest and destination), `--chown`,
    /// `--chmod` and `--link`; for `--from`, the source paths (the line joins them with
    /// `:`, which a path may contain).
    pub(crate) fn copy(
        parent: &str,
        created_by: &str,
        chown: Option<&str>,
        chmod: Option<u32>,
        link: bool,
        from_paths: Option<&[String]>,
    ) -> CacheKey {
        let mut text = format!(
            "{created_by} chown={} chmod={chmod:?} link={link}",
            chown.unwrap_or_default()
        );
        if let Some(paths) = from_paths {
            text.push_str(&format!(
                "\nfrom_paths={}",
                serde_json::to_string(paths).expect("serializable")
            ));
        }
        CacheKey::of(parent, &text)
    }

    pub(crate) fn hex(&self) -> &str {
        &self.0
    }
}

/// RUN's history line, as docker writes it: `|N K=V … cmd` when N build args are in scope.
pub(crate) fn run_history(args: &[String], build_args: &[(String, String)]) -> String {
    let cmd = args.join(" ");
    if build_args.is_empty() {
        return cmd;
    }
    let kv: Vec<String> = build_args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("|{} {} {cmd}", build_args.len(), kv.join(" "))
}

/// COPY/ADD's history line: `<shell> #(nop) COPY <summary> in <dest> `.
pub(crate) fn copy_history(shell: &[String], verb: &str, summary: &str, dest: &str) -> String {
    format!("{} #(nop) {verb} {summary} in {dest} ", shell.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "sha256:1111";
    const Q: &str = "sha256:2222";

    fn sh(cmd: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), cmd.into()]
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn args(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// A RUN's key the way `run_step` makes it: the history line from the same argv and
    /// build args.
    fn run_key(
        parent: &str,
        argv: &[String],
        build_args: &[(String, String)],
        script: Option<(&str, &str)>,
        network: Option<&str>,
    ) -> CacheKey {
        let history = run_history(argv, build_args);
        CacheKey::run(
            parent,
            &RunInputs {
                history: &history,
                argv,
                build_args,
                script,
                network,
            },
        )
    }

    fn copy_key(summary: &str, dest: &str) -> CacheKey {
        let line = copy_history(&sh("")[..2], "COPY", summary, dest);
        CacheKey::copy(P, &line, None, None, false, None)
    }

    #[test]
    fn the_same_inputs_give_the_same_key() {
        let a = args(&[("V", "1")]);
        assert_eq!(
            run_key(
                P,
                &sh("pip install flask"),
                &a,
                Some(("s", "echo\n")),
                Some("none")
            ),
            run_key(
                P,
                &sh("pip install flask"),
                &a,
                Some(("s", "echo\n")),
                Some("none")
            )
        );
        assert_eq!(
            CacheKey::copy(P, "COPY file:abc in /app", Some("1:1"), Some(0o755), false, None),
            CacheKey::copy(P, "COPY file:abc in /app", Some("1:1"), Some(0o755), false, None)
        );
        let from = strings(&["/a"]);
        assert_eq!(
            CacheKey::copy(P, "COPY from:x in /", None, None, false, Some(&from)),
            CacheKey::copy(P, "COPY from:x in /", None, None, false, Some(&from))
        );
        assert_eq!(CacheKey::line(P, "ENV A=1"), CacheKey::line(P, "ENV A=1"));
        assert_eq!(
            CacheKey::config(P, "ENV A=1", &args(&[("A", "1")])),
            CacheKey::config(P, "ENV A=1", &args(&[("A", "1")]))
        );
        assert_eq!(CacheKey::line(P, "ENV A=1").hex().len(), 64);
    }

    #[test]
    fn a_different_parent_invalidates_every_kind_of_step() {
        assert_ne!(CacheKey::line(P, "CMD x"), CacheKey::line(Q, "CMD x"));
        assert_ne!(
            CacheKey::config(P, "ENV A=1", &args(&[("A", "1")])),
            CacheKey::config(Q, "ENV A=1", &args(&[("A", "1")]))
        );
        assert_ne!(
            run_key(P, &sh("true"), &[], None, None),
            run_key(Q, &sh("true"), &[], None, None)
        );
        assert_ne!(
            CacheKey::copy(P, "COPY file:abc in /", None, None, false, None),
            CacheKey::copy(Q, "COPY file:abc in /", None, None, false, None)
        );
    }

    #[test]
    fn each_run_input_invalidates_the_key() {
        let v1 = args(&[("V", "1")]);
        let k = run_key(P, &sh("make"), &v1, None, None);
        let changed = [
            ("the command", run_key(P, &sh("make install"), &v1, None, None)),
            (
                "an arg's value",
                run_key(P, &sh("make"), &args(&[("V", "2")]), None, None),
            ),
            (
                "one more arg",
                run_key(P, &sh("make"), &args(&[("V", "1"), ("W", "1")]), None, None),
            ),
            ("no args", run_key(P, &sh("make"), &[], None, None)),
            (
                "a script",
                run_key(P, &sh("make"), &v1, Some(("s", "echo 1\n")), None),
            ),
            ("--network", run_key(P, &sh("make"), &v1, None, Some("none"))),
        ];
        for (what, c) in &changed {
            assert_ne!(c, &k, "{what}");
        }
        assert_ne!(
            run_key(P, &sh("make"), &v1, Some(("s", "echo 1\n")), None),
            run_key(P, &sh("make"), &v1, Some(("s", "echo 2\n")), None),
            "the heredoc's content counts"
        );
        assert_ne!(
            run_key(P, &sh("make"), &v1, Some(("a", "echo 1\n")), None),
            run_key(P, &sh("make"), &v1, Some(("b", "echo 1\n")), None),
            "the heredoc's name counts (it is the script's file name)"
        );
        assert_ne!(
            run_key(P, &sh("make"), &v1, None, Some("none")),
            run_key(P, &sh("make"), &v1, None, Some("host"))
        );
    }

    #[test]
    fn run_steps_whose_history_lines_read_alike_differ() {
        // Exec form with the words split vs shell form: both show `/bin/sh -c echo hi`,
        // but one runs `echo hi` and the other `echo` with $0=hi.
        let shell = sh("echo hi");
        let exec = strings(&["/bin/sh", "-c", "echo", "hi"]);
        assert_eq!(run_history(&shell, &[]), run_history(&exec, &[]));
        assert_ne!(
            run_key(P, &shell, &[], None, None),
            run_key(P, &exec, &[], None, None)
        );
        // One program whose name has a space vs a program and an argument.
        let one = strings(&["my tool"]);
        let two = strings(&["my", "tool"]);
        assert_ne!(
            run_key(P, &one, &[], None, None),
            run_key(P, &two, &[], None, None)
        );
        // Build args whose values hold `K=V`: `|2 A=1 B=2 C=3 make` either way.
        let a = args(&[("A", "1 B=2"), ("C", "3")]);
        let b = args(&[("A", "1"), ("B", "2 C=3")]);
        assert_eq!(run_history(&sh("make"), &a), run_history(&sh("make"), &b));
        assert_ne!(
            run_key(P, &sh("make"), &a, None, None),
            run_key(P, &sh("make"), &b, None, None)
        );
    }

    #[test]
    fn each_copy_input_invalidates_the_key() {
        let line = "/bin/sh -c #(nop) COPY file:aaaa in /app ";
        let k = CacheKey::copy(P, line, None, None, false, None);
        let changed = [
            ("the content digest", copy_key("file:bbbb", "/app")),
            ("the destination", copy_key("file:aaaa", "/srv")),
            ("a single file vs a dir", copy_key("dir:aaaa", "/app")),
            (
                "--chown",
                CacheKey::copy(P, line, Some("1000"), None, false, None),
            ),
            ("--chmod", CacheKey::copy(P, line, None, Some(0o644), false, None)),
            ("--link", CacheKey::copy(P, line, None, None, true, None)),
        ];
        assert_eq!(
            copy_key("file:aaaa", "/app"),
            k,
            "copy_history is the line COPY writes"
        );
        for (what, c) in &changed {
            assert_ne!(c, &k, "{what}");
        }
        assert_ne!(
            CacheKey::copy(P, line, None, Some(0o644), false, None),
            CacheKey::copy(P, line, None, Some(0o755), false, None)
        );
        assert_ne!(
            CacheKey::copy(P, line, Some("1000"), None, false, None),
            CacheKey::copy(P, line, Some("1001"), None, false, None)
        );
        let add = copy_history(&sh("")[..2], "ADD", "file:aaaa", "/app");
        assert_ne!(
            CacheKey::copy(P, &add, None, None, false, None),
            k,
            "ADD is not COPY"
        );
    }

    #[test]
    fn copy_from_paths_that_read_alike_differ() {
        // `from:<stage>:a:b` is the summary of both `a:b` and of `a` plus `b`.
        let line = "/bin/sh -c #(nop) COPY from:sha256:99:a:b in /x/ ";
        let one = strings(&["a:b"]);
        let two = strings(&["a", "b"]);
        assert_ne!(
            CacheKey::copy(P, line, None, None, false, Some(&one)),
            CacheKey::copy(P, line, None, None, false, Some(&two))
        );
    }

    #[test]
    fn each_copied_file_counts_by_path_mode_and_content_not_time() {
        use crate::context::BuildContext;
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        std::fs::create_dir(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.py"), "a").unwrap();
        std::fs::write(root.join("src/b.py"), "b").unwrap();
        std::os::unix::fs::symlink("a.py", root.join("src/link")).unwrap();
        // The key COPY src /app gets, from the context as it is now.
        let key = || {
            let ctx = BuildContext::open(root).unwrap();
            let digest = ctx.sources_digest(&["src".to_string()]).unwrap();
            copy_key(&format!("dir:{digest}"), "/app")
        };
        let k = key();
        assert_eq!(key(), k, "the same context gives the same key");

        let f = std::fs::File::options()
            .append(true)
            .open(root.join("src/a.py"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(key(), k, "a file's time does not count");

        std::fs::write(root.join("src/a.py"), "A").unwrap();
        let after_content = key();
        assert_ne!(after_content, k, "a file's content counts");
        std::fs::write(root.join("src/a.py"), "a").unwrap();
        assert_eq!(key(), k);

        std::fs::set_permissions(root.join("src/b.py"), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(key(), k, "a file's mode counts");
        std::fs::set_permissions(root.join("src/b.py"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let k644 = key();

        std::fs::rename(root.join("src/b.py"), root.join("src/c.py")).unwrap();
        assert_ne!(key(), k644, "a file's path counts");
        std::fs::rename(root.join("src/c.py"), root.join("src/b.py")).unwrap();
        assert_eq!(key(), k644);

        std::fs::remove_file(root.join("src/link")).unwrap();
        std::os::unix::fs::symlink("b.py", root.join("src/link")).unwrap();
        assert_ne!(key(), k644, "a symlink's target counts");

        std::fs::write(root.join("src/new.py"), "").unwrap();
        let with_new = key();
        assert_ne!(with_new, k644, "a new file counts, even an empty one");

        // Excluded by .dockerignore: not copied, so not counted.
        std::fs::write(root.join(".dockerignore"), "src/secret\n").unwrap();
        let before = key();
        std::fs::write(root.join("src/secret"), "s").unwrap();
        assert_eq!(key(), before, "an ignored file does not count");
    }

    #[test]
    fn config_steps_whose_history_lines_read_alike_differ() {
        // ENV A="1 B=2" and ENV A=1 B=2 both show `ENV A=1 B=2`.
        let line = "/bin/sh -c #(nop)  ENV A=1 B=2";
        assert_ne!(
            CacheKey::config(P, line, &args(&[("A", "1 B=2")])),
            CacheKey::config(P, line, &args(&[("A", "1"), ("B", "2")]))
        );
        // VOLUME ["/a b"] and VOLUME /a /b both show `VOLUME [/a b]`.
        let line = "/bin/sh -c #(nop)  VOLUME [/a b]";
        assert_ne!(
            CacheKey::config(P, line, &strings(&["/a b"])),
            CacheKey::config(P, line, &strings(&["/a", "/b"]))
        );
        // ENTRYPOINT drops an inherited CMD unless the stage set one: same line, parent.
        let line = "/bin/sh -c #(nop)  ENTRYPOINT [\"e\"]";
        assert_ne!(
            CacheKey::config(P, line, &true),
            CacheKey::config(P, line, &false)
        );
        // A detail never makes a config step's key equal to a plain line's.
        assert_ne!(
            CacheKey::config(P, "ENV A=1", &args(&[("A", "1")])),
            CacheKey::line(P, "ENV A=1")
        );
    }

    #[test]
    fn keys_stay_what_stored_caches_hold() {
        // sha256("sha256:1111\nENV A=1"): a change here orphans every build cache on disk.
        assert_eq!(
            CacheKey::line(P, "ENV A=1").hex(),
            "0aa2390b2ec4b89d0404283dae95c18277d2cf1c4d9a9915c5fd28d744591a1b"
        );
        // COPY from the context keeps the key it had before `--from` paths were added.
        assert_eq!(
            CacheKey::copy(
                P,
                "/bin/sh -c #(nop) COPY file:aaaa in /app ",
                None,
                None,
                false,
                None
            )
            .hex(),
            "20e29ef35d4d660077bab7408a09861ad2695c9c6292428e626c7c50f1a57446"
        );
    }

    #[test]
    fn kinds_of_step_do_not_collide() {
        // A RUN and a config step with the same text are different steps.
        let x = strings(&["x"]);
        assert_ne!(run_key(P, &x, &[], None, None), CacheKey::line(P, "x"));
    }

    #[test]
    fn history_lines_match_docker() {
        assert_eq!(run_history(&sh("echo hi"), &[]), "/bin/sh -c echo hi");
        assert_eq!(
            run_history(&sh("echo $V"), &args(&[("V", "2"), ("W", "x y")])),
            "|2 V=2 W=x y /bin/sh -c echo $V"
        );
        assert_eq!(
            copy_history(&sh("")[..2], "COPY", "file:ab", "/app"),
            "/bin/sh -c #(nop) COPY file:ab in /app "
        );
    }
}
