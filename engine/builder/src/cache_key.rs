//! Build cache keys: everything a step's result depends on, hashed with its parent.
//!
//! A key is `sha256(parent image ID, "\n", the step's text)`. The parent ID already covers
//! every earlier step and the base image (config and layers), so the text only has to name
//! what this step adds: its history line (for RUN that includes the build args in scope;
//! for COPY/ADD the digest of the selected sources' content and the destination) and the
//! options that change its result without showing in that line.

use sha2::{Digest as _, Sha256};

/// The key of one step, as stored in the build cache (hex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey(String);

impl CacheKey {
    fn of(parent: &str, text: &str) -> CacheKey {
        let mut h = Sha256::new();
        h.update(parent.as_bytes());
        h.update(b"\n");
        h.update(text.as_bytes());
        CacheKey(hex::encode(h.finalize()))
    }

    /// A step whose history line says everything it does: the config steps (ENV, CMD,
    /// LABEL, …) and WORKDIR.
    pub(crate) fn line(parent: &str, created_by: &str) -> CacheKey {
        CacheKey::of(parent, created_by)
    }

    /// RUN: the history line, the heredoc script run as a file (its name and content), and
    /// the `--network` mode. Proxy build args are deliberately left out, as docker does.
    pub(crate) fn run(
        parent: &str,
        created_by: &str,
        script: Option<(&str, &str)>,
        network: Option<&str>,
    ) -> CacheKey {
        let mut text = format!("RUN {created_by}");
        if let Some((name, content)) = script {
            text.push_str(&format!(" script {name}:{content}"));
        }
        if let Some(n) = network {
            text.push_str(&format!(" network={n}"));
        }
        CacheKey::of(parent, &text)
    }

    /// COPY/ADD: the history line (sources' content digest and destination), `--chown`,
    /// `--chmod` and `--link`.
    pub(crate) fn copy(
        parent: &str,
        created_by: &str,
        chown: Option<&str>,
        chmod: Option<u32>,
        link: bool,
    ) -> CacheKey {
        let text = format!(
            "{created_by} chown={} chmod={chmod:?} link={link}",
            chown.unwrap_or_default()
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "sha256:1111";

    fn sh(cmd: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), cmd.into()]
    }

    fn args(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_same_inputs_give_the_same_key() {
        let h = run_history(&sh("pip install flask"), &args(&[("V", "1")]));
        assert_eq!(CacheKey::run(P, &h, None, None), CacheKey::run(P, &h, None, None));
        assert_eq!(
            CacheKey::copy(P, "COPY file:abc in /app", Some("1:1"), Some(0o755), false),
            CacheKey::copy(P, "COPY file:abc in /app", Some("1:1"), Some(0o755), false)
        );
        assert_eq!(CacheKey::line(P, "ENV A=1"), CacheKey::line(P, "ENV A=1"));
        assert_eq!(CacheKey::line(P, "ENV A=1").hex().len(), 64);
    }

    #[test]
    fn a_different_parent_invalidates_every_kind_of_step() {
        let q = "sha256:2222";
        assert_ne!(CacheKey::line(P, "CMD x"), CacheKey::line(q, "CMD x"));
        assert_ne!(
            CacheKey::run(P, "true", None, None),
            CacheKey::run(q, "true", None, None)
        );
        assert_ne!(
            CacheKey::copy(P, "COPY file:abc in /", None, None, false),
            CacheKey::copy(q, "COPY file:abc in /", None, None, false)
        );
    }

    #[test]
    fn each_run_input_invalidates_the_key() {
        let base = run_history(&sh("make"), &args(&[("V", "1")]));
        let k = CacheKey::run(P, &base, None, None);
        let other_cmd = run_history(&sh("make install"), &args(&[("V", "1")]));
        let other_arg = run_history(&sh("make"), &args(&[("V", "2")]));
        let more_args = run_history(&sh("make"), &args(&[("V", "1"), ("W", "1")]));
        let no_args = run_history(&sh("make"), &[]);
        for changed in [other_cmd, other_arg, more_args, no_args] {
            assert_ne!(CacheKey::run(P, &changed, None, None), k, "{changed}");
        }
        assert_ne!(CacheKey::run(P, &base, Some(("script", "echo 1")), None), k);
        assert_ne!(
            CacheKey::run(P, &base, Some(("script", "echo 1")), None),
            CacheKey::run(P, &base, Some(("script", "echo 2")), None),
            "the heredoc's content counts"
        );
        assert_ne!(CacheKey::run(P, &base, None, Some("none")), k);
        assert_ne!(
            CacheKey::run(P, &base, None, Some("none")),
            CacheKey::run(P, &base, None, Some("host"))
        );
    }

    #[test]
    fn each_copy_input_invalidates_the_key() {
        let line = "/bin/sh -c #(nop) COPY file:aaaa in /app ";
        let k = CacheKey::copy(P, line, None, None, false);
        let changed = [
            CacheKey::copy(P, "/bin/sh -c #(nop) COPY file:bbbb in /app ", None, None, false),
            CacheKey::copy(P, "/bin/sh -c #(nop) COPY file:aaaa in /srv ", None, None, false),
            CacheKey::copy(P, line, Some("1000"), None, false),
            CacheKey::copy(P, line, None, Some(0o644), false),
            CacheKey::copy(P, line, None, None, true),
        ];
        for c in &changed {
            assert_ne!(c, &k);
        }
        assert_ne!(
            CacheKey::copy(P, line, None, Some(0o644), false),
            CacheKey::copy(P, line, None, Some(0o755), false)
        );
    }

    #[test]
    fn keys_stay_what_stored_caches_hold() {
        // sha256("sha256:1111\nENV A=1"): a change here orphans every build cache on disk.
        assert_eq!(
            CacheKey::line(P, "ENV A=1").hex(),
            "0aa2390b2ec4b89d0404283dae95c18277d2cf1c4d9a9915c5fd28d744591a1b"
        );
    }

    #[test]
    fn kinds_of_step_do_not_collide() {
        // A RUN and a config step with the same text are different steps.
        assert_ne!(CacheKey::run(P, "x", None, None), CacheKey::line(P, "x"));
    }

    #[test]
    fn history_lines_match_docker() {
        assert_eq!(run_history(&sh("echo hi"), &[]), "/bin/sh -c echo hi");
        assert_eq!(
            run_history(&sh("echo $V"), &args(&[("V", "2"), ("W", "x y")])),
            "|2 V=2 W=x y /bin/sh -c echo $V"
        );
    }
}
