//! `--format` and config.json list formats, byte for byte against the real docker CLI (v28):
//! the same `berth daemon` root listed by `docker` (DOCKER_HOST), by `berth` in-process,
//! and by `berth` through `BERTH_HOST`.
//!
//! Only one thing is normalised: docker's time phrases ("Up 3 seconds", "Exited (0) 2
//! seconds ago", "About a minute") become `<time>`, because the three clients run a moment
//! apart. Formats that show them put `.Status` last, so the phrase's width does not move
//! other columns. Every other byte — header names, tabwriter padding, truncation — must match.

use std::path::{Path, PathBuf};
use std::process::Command;

use berth_tests::berth::{self, Berth, Run};
use berth_tests::daemon::{docker_cli, run_of, Daemon};
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};

const LECTURE_PS_FORMAT: &str = r#"{"psFormat": "table {{.Names}}\\t{{truncate .Image 25}}\\t{{.Status}}"}"#;

/// Where the clients read `config.json` from.
#[derive(Clone, Copy)]
enum Config<'a> {
    /// `$DOCKER_CONFIG/config.json`
    DockerConfig(&'a Path),
    /// `$HOME/.docker/config.json`, DOCKER_CONFIG unset
    Home(&'a Path),
}

impl Config<'_> {
    fn apply(self, c: &mut Command) {
        match self {
            Config::DockerConfig(dir) => {
                c.env("DOCKER_CONFIG", dir);
            }
            Config::Home(home) => {
                c.env_remove("DOCKER_CONFIG").env("HOME", home);
            }
        }
    }
}

struct Clients {
    host: String,
    root: PathBuf,
    /// The remote client's own (empty) root: BERTH_HOST must not use it.
    remote_root: tempfile::TempDir,
}

#[derive(Debug)]
struct Three {
    docker: Run,
    local: Run,
    remote: Run,
}

impl Clients {
    fn docker(&self, cfg: Config, args: &[&str]) -> Run {
        let mut c = Command::new(docker_cli());
        c.args(args)
            .env("DOCKER_HOST", &self.host)
            // CreatedAt is printed in the local zone; berth prints UTC.
            .env("TZ", "UTC")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        cfg.apply(&mut c);
        run_of(&mut c)
    }

    fn berth(&self, cfg: Config, args: &[&str], remote: bool) -> Run {
        let mut c = Command::new(berth::bin());
        c.args(args).env_remove("BERTH_HOST").env_remove("RUST_BACKTRACE");
        if remote {
            c.env("BERTH_HOST", &self.host)
                .env("BERTH_ROOT", self.remote_root.path());
        } else {
            c.env("BERTH_ROOT", &self.root);
        }
        cfg.apply(&mut c);
        run_of(&mut c)
    }

    fn all(&self, cfg: Config, args: &[&str]) -> Three {
        Three {
            docker: self.docker(cfg, args),
            local: self.berth(cfg, args, false),
            remote: self.berth(cfg, args, true),
        }
    }

    /// All three succeed and print the same bytes (time phrases normalised).
    fn same(&self, what: &str, cfg: Config, args: &[&str]) -> String {
        let t = self.all(cfg, args);
        for (who, r) in [
            ("docker", &t.docker),
            ("berth", &t.local),
            ("berth (BERTH_HOST)", &t.remote),
        ] {
            assert_eq!(
                r.code, 0,
                "{what}: {who} {args:?} failed:\n{}\n{}",
                r.stdout, r.stderr
            );
        }
        let want = normalise(&t.docker.stdout);
        for (who, r) in [("berth", &t.local), ("berth (BERTH_HOST)", &t.remote)] {
            assert_eq!(
                normalise(&r.stdout),
                want,
                "{what}: {who} {args:?} differs from docker\n--- docker:\n{}--- {who}:\n{}",
                t.docker.stdout,
                r.stdout
            );
        }
        assert!(
            !want.trim().is_empty(),
            "{what}: docker printed nothing for {args:?}"
        );
        want
    }

    /// All three fail; berth prints nothing on stdout and one `Error: …` line.
    fn all_fail(&self, what: &str, cfg: Config, args: &[&str]) -> Three {
        let t = self.all(cfg, args);
        assert_ne!(
            t.docker.code, 0,
            "{what}: docker {args:?} should fail:\n{}",
            t.docker.stdout
        );
        for (who, r) in [("berth", &t.local), ("berth (BERTH_HOST)", &t.remote)] {
            assert_ne!(r.code, 0, "{what}: {who} {args:?} should fail:\n{}", r.stdout);
            assert_eq!(r.stdout, "", "{what}: {who} {args:?} printed output");
            let lines: Vec<&str> = r.stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{what}: {who} should say one line:\n{}", r.stderr);
            assert!(
                lines[0].starts_with("Error: the format template"),
                "{what}: {who}: {}",
                lines[0]
            );
        }
        t
    }
}

/// docker's `units.HumanDuration` phrases (with "Up"/"Exited (N)"/"ago" kept) as `<time>`.
fn normalise(s: &str) -> String {
    let mut out = s.to_string();
    for phrase in ["Less than a second", "About a minute", "About an hour"] {
        out = out.replace(phrase, "<time>");
    }
    let words = ["seconds", "second", "minutes", "hours"];
    let mut result = String::new();
    let mut rest = out.as_str();
    'outer: while !rest.is_empty() {
        let digits = rest.find(|c: char| c.is_ascii_digit());
        let Some(start) = digits else {
            result.push_str(rest);
            break;
        };
        let end = start
            + rest[start..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - start);
        for w in words {
            let unit = format!(" {w}");
            if rest[end..].starts_with(&unit)
                && !rest[end + unit.len()..].starts_with(|c: char| c.is_ascii_alphanumeric())
                && (start == 0 || !rest.as_bytes()[start - 1].is_ascii_alphanumeric())
            {
                result.push_str(&rest[..start]);
                result.push_str("<time>");
                rest = &rest[end + unit.len()..];
                continue 'outer;
            }
        }
        result.push_str(&rest[..end]);
        rest = &rest[end..];
    }
    result
}

#[test]
fn normalise_only_touches_time_phrases() {
    assert_eq!(
        normalise("web   Up 3 seconds\nx   Exited (0) 1 second ago\nUp Less than a second\nabc123 4 minutes"),
        "web   Up <time>\nx   Exited (0) <time> ago\nUp <time>\nabc123 <time>"
    );
    assert_eq!(normalise("id 0123abc 5seconds"), "id 0123abc 5seconds");
}

#[test]
fn formats_match_the_docker_cli() {
    let reg = Registry::start(Mode::Plain);
    reg.push_fixture(&fixtures::image("busybox"), "library/busybox:latest");
    // A second, different image with a shell: busybox plus /etc/arch.
    reg.push_fixture(&fixtures::image("multiarch"), "lecture/ma:v1");
    let b = Berth::new();
    let d = Daemon::start(&b);
    let busybox = reg.reference("library/busybox:latest");
    let ma_remote = reg.reference("lecture/ma:v1");
    b.ok(&["pull", "-q", &busybox]);
    b.ok(&["pull", "-q", &ma_remote]);
    // One repository per image: docker orders an image's repositories as a Go map would.
    b.ok(&["tag", &ma_remote, "ma:v1"]);
    b.ok(&["rmi", &ma_remote]);
    b.ok(&["volume", "create", "formatdata"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--label",
        "tier=front",
        &busybox,
        "sleep",
        "1000",
    ]);
    b.ok(&[
        "run",
        "--name",
        "a-much-longer-container-name",
        "--label",
        "tier=back",
        "--label",
        "com.example.owner=lecture",
        "ma:v1",
        "sh",
        "-c",
        "echo this command line is longer than twenty characters",
    ]);
    b.ok(&["create", "--name", "c3", "ma:v1", "true"]);

    let c = Clients {
        host: d.host(),
        root: b.root().to_path_buf(),
        remote_root: tempfile::tempdir().expect("tempdir"),
    };
    let config_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(config_dir.path().join("config.json"), LECTURE_PS_FORMAT).expect("config.json");
    let home = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(home.path().join(".docker")).expect("mkdir");
    std::fs::write(home.path().join(".docker/config.json"), LECTURE_PS_FORMAT).expect("config.json");
    let empty = tempfile::tempdir().expect("tempdir");
    let (with_dir, with_home, plain) = (
        Config::DockerConfig(config_dir.path()),
        Config::Home(home.path()),
        Config::DockerConfig(empty.path()),
    );

    // The lecture's tip: psFormat from config.json, by DOCKER_CONFIG and by HOME.
    for (what, cfg) in [
        ("psFormat via DOCKER_CONFIG", with_dir),
        ("psFormat via HOME", with_home),
    ] {
        let out = c.same(what, cfg, &["ps", "-a"]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{what}: header and 3 rows:\n{out}");
        assert!(lines[0].starts_with("NAMES   "), "{what}: {out}");
        assert!(
            lines[0].contains("IMAGE") && lines[0].ends_with("STATUS"),
            "{what}: {out}"
        );
        let image_25: String = busybox.chars().take(25).collect();
        assert!(
            out.contains(&format!("{image_25}   ")),
            "{what}: image cut at 25: {out}"
        );
        // --format wins over the config, --quiet over both.
        let out = c.same(what, cfg, &["ps", "-a", "--format", "{{.Names}}"]);
        assert!(!out.contains("NAMES"), "{out}");
        let ids = c.same(what, cfg, &["ps", "-a", "-q"]);
        assert!(ids.lines().all(|l| l.len() == 12), "{ids}");
    }

    let same = |what: &str, args: &[&str]| c.same(what, plain, args);
    let out = same(
        "truncate 5",
        &[
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\\t{{truncate .Image 5}}\\t{{.Status}}",
        ],
    );
    assert!(!out.contains("{{"), "{out}");
    assert!(out.contains("127.0   ") && out.contains("ma:v1   "), "{out}");
    {
        // The default table has the time phrase in two middle columns (CREATED, STATUS), so
        // a phrase that changes width between two clients ("9 seconds" → "10 seconds")
        // would move the columns after it: here runs of spaces count as one separator.
        let columns = |s: &str| -> String {
            normalise(s)
                .lines()
                .map(|l| {
                    l.split("   ")
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let t = c.all(plain, &["ps", "-a"]);
        assert_eq!(t.docker.code, 0, "{}", t.docker.stderr);
        assert!(
            t.docker.stdout.starts_with("CONTAINER ID   IMAGE"),
            "{}",
            t.docker.stdout
        );
        for r in [&t.local, &t.remote] {
            assert_eq!(
                columns(&r.stdout),
                columns(&t.docker.stdout),
                "default ps table:\n{}\n{}",
                t.docker.stdout,
                r.stdout
            );
        }
    }
    same("plain ID", &["ps", "-a", "--format", "{{.ID}}"]);
    same(
        "no-trunc ID",
        &["ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
    );
    let upper = same("upper", &["ps", "-a", "--format", "{{upper .Names}}"]);
    assert!(upper.contains("A-MUCH-LONGER-CONTAINER-NAME\n"), "{upper}");
    same(
        "json fields",
        &[
            "ps",
            "-a",
            "--format",
            "{{json .Names}} {{json .State}} {{.Names | upper | lower}}",
        ],
    );
    let labels = same(
        "join/split and .Label",
        &[
            "ps",
            "-a",
            "--format",
            "table {{.Names}}\\t{{join (split .Labels \",\") \" + \"}}\\t{{.Label \"tier\"}}\\t{{.Label \"com.example.owner\"}}",
        ],
    );
    assert!(
        labels
            .lines()
            .next()
            .is_some_and(|h| h.contains("tier") && h.contains("owner")),
        "{labels}"
    );
    same(
        "command, state, networks, created",
        &[
            "ps",
            "-a",
            "--format",
            "table {{.ID}}\\t{{.Command}}\\t{{.State}}\\t{{.Networks}}\\t{{.CreatedAt}}\\t{{.Names}}",
        ],
    );
    same(
        "if/else and pad",
        &[
            "ps",
            "-a",
            "--format",
            "{{if eq .State \"running\"}}[{{pad .Names 1 1}}]{{else}}{{title .State}}: {{.Names}}{{end}}",
        ],
    );
    same(
        "the rest of the fields",
        &[
            "ps",
            "-a",
            "--format",
            "{{.Names}}|{{.Platform}}|{{.Mounts}}|{{.LocalVolumes}}|{{.Ports}}|{{.Size}}|{{len .Names}}",
        ],
    );
    same(
        "image inspect",
        &[
            "image",
            "inspect",
            "--format",
            "{{.Id}} {{json .RepoTags}} {{.Os}}/{{.Architecture}}",
            "ma:v1",
        ],
    );
    same(
        "ps filter",
        &["ps", "-a", "--filter", "name=web", "--format", "{{.Names}}"],
    );

    let images = same(
        "images table",
        &["images", "--format", "table {{.Repository}}\\t{{.Tag}}"],
    );
    assert!(images.starts_with("REPOSITORY"), "{images}");
    assert!(
        images
            .lines()
            .any(|l| l.starts_with("ma   ") && l.ends_with("   v1")),
        "{images}"
    );
    // The fixtures were built a while ago, so CREATED ("2 hours ago") holds still here.
    same("images default", &["images"]);
    same("images --digests", &["images", "--digests"]);
    same("images --no-trunc -q", &["images", "-q", "--no-trunc"]);
    same(
        "images plain",
        &[
            "images",
            "--format",
            "{{.ID}} {{.Size}} {{.Repository}}:{{.Tag}} {{.Digest}}",
        ],
    );
    same(
        "images json",
        &["images", "--format", "{{json .Repository}} {{.Containers}}"],
    );
    // Every field, with docker's HTML escaping of its contexts' JSON ("\u003cnone\u003e").
    let all = same("images json .", &["images", "--format", "{{json .}}"]);
    assert!(all.contains("\\u003cnone\\u003e"), "{all}");

    same(
        "inspect",
        &[
            "inspect",
            "--format",
            "{{.Name}} {{.State.Status}} {{.Config.Image}} {{json .Config.Cmd}}",
            "web",
            "c3",
        ],
    );
    same(
        "inspect range",
        &[
            "inspect",
            "--format",
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            "a-much-longer-container-name",
        ],
    );
    same(
        "volume ls",
        &["volume", "ls", "--format", "table {{.Name}}\\t{{.Driver}}"],
    );
    same("volume ls default", &["volume", "ls"]);
    same("network ls default", &["network", "ls"]);
    same(
        "network ls plain",
        &["network", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}}"],
    );

    // stats runs in-process only (BERTH_HOST says so): docker against the daemon, berth local.
    let stats = [
        "stats",
        "--no-stream",
        "--format",
        "table {{.Container}}\\t{{.Name}}\\t{{.ID}}",
        "web",
    ];
    let (docker, local) = (c.docker(plain, &stats), c.berth(plain, &stats, false));
    assert_eq!(
        (docker.code, local.code),
        (0, 0),
        "{}\n{}",
        docker.stderr,
        local.stderr
    );
    assert_eq!(local.stdout, docker.stdout, "stats --format");
    assert!(
        local
            .stdout
            .starts_with("CONTAINER   NAME      CONTAINER ID\nweb "),
        "{}",
        local.stdout
    );

    // Templates that cannot work: every client refuses, berth in one sentence.
    let t = c.all_fail(
        "unknown function",
        plain,
        &["ps", "-a", "--format", "{{nope .Names}}"],
    );
    assert!(t.local.stderr.contains("'nope'"), "{}", t.local.stderr);
    c.all_fail(
        "unknown field",
        plain,
        &["ps", "-a", "--format", "table {{.Names}}\\t{{.Nope}}"],
    );
    c.all_fail("unclosed action", plain, &["ps", "-a", "--format", "{{.Names"]);
    c.all_fail(
        "wrong argument type",
        plain,
        &["ps", "-a", "--format", "{{.Image | truncate 5}}"],
    );
    c.all_fail(
        "unknown function in images",
        plain,
        &["images", "--format", "{{nope .Tag}}"],
    );
    // The same from config.json: the message says where the format came from.
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        bad.path().join("config.json"),
        r#"{"psFormat": "table {{nope .Names}}"}"#,
    )
    .expect("config.json");
    let t = c.all_fail("bad psFormat", Config::DockerConfig(bad.path()), &["ps", "-a"]);
    assert!(t.local.stderr.contains("psFormat in "), "{}", t.local.stderr);
}
