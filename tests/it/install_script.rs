//! `scripts/install.sh`'s logic, independent of what this machine has installed.
//!
//! The script runs with a PATH of stand-ins only: `apt-get`, `apt-cache`, `dpkg-query`, `id`,
//! `node`, `npm`, `cargo` and every command the script checks for afterwards are scripts
//! that record their calls in a log and keep a fake package database; the few real tools
//! a shell script needs (grep, sed, …) are linked in by name. Nothing touches the real apt.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const REAL_TOOLS: &[&str] = &[
    "bash", "sh", "env", "grep", "sed", "tr", "cat", "mkdir", "dirname", "tee", "cp", "rm", "sleep", "chmod",
    "mktemp", "tail",
];

struct Sandbox {
    dir: tempfile::TempDir,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn write_exec(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The words between `NAME='` and the closing `'` in install.sh (comments dropped).
fn quoted_block(script: &str, name: &str) -> Vec<String> {
    let start = script
        .find(&format!("{name}='"))
        .unwrap_or_else(|| panic!("install.sh defines no {name}"));
    let rest = &script[start + name.len() + 2..];
    let body = &rest[..rest.find('\'').expect("closing quote")];
    body.lines()
        .map(|l| l.split('#').next().unwrap())
        .flat_map(|l| l.split_whitespace())
        .map(str::to_string)
        .collect()
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("berth-install-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        for sub in [
            "repo/scripts",
            "repo/ui/node_modules",
            "stubs",
            "bin",
            "state",
            "home",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::copy(
            repo_root().join("scripts/install.sh"),
            d.join("repo/scripts/install.sh"),
        )
        .unwrap();
        // ui/node_modules newer than the lock: npm ci is not needed.
        std::fs::write(d.join("repo/ui/package-lock.json"), "{}").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(d.join("repo/ui/node_modules/.package-lock.json"), "{}").unwrap();
        std::fs::write(d.join("state/installed"), "").unwrap();
        std::fs::write(d.join("state/calls"), "").unwrap();
        for tool in REAL_TOOLS {
            let real = berth_tests::tools::find(tool).unwrap_or_else(|| panic!("no {tool} on PATH"));
            std::os::unix::fs::symlink(real, d.join("bin").join(tool)).unwrap();
        }
        let state = d.join("state");
        let s = state.display();
        let record = format!("printf '%s\\n' \"$(basename \"$0\") $*\" >>{s}/calls\n");
        write_exec(
            &d.join("stubs/apt-get"),
            &format!(
                "#!/bin/sh\n{record}\
                 if [ \"$1\" = update ] && [ -e {s}/fail-update ]; then echo 'E: stand-in update failure' >&2; exit 100; fi\n\
                 if [ \"$1\" = install ]; then shift; for a in \"$@\"; do case \"$a\" in -*) ;; *) echo \"$a\" >>{s}/installed;; esac; done; fi\n\
                 exit 0\n"
            ),
        );
        write_exec(
            &d.join("stubs/apt-cache"),
            &format!("#!/bin/sh\n{record}exit 0\n"),
        );
        write_exec(
            &d.join("stubs/dpkg-query"),
            &format!(
                "#!/bin/sh\n\
                 for pkg; do :; done\n\
                 if grep -qx \"$pkg\" {s}/installed; then printf 'install ok installed'; exit 0; fi\n\
                 echo \"dpkg-query: no packages found matching $pkg\" >&2; exit 1\n"
            ),
        );
        write_exec(&d.join("stubs/id"), "#!/bin/sh\necho 0\n");
        write_exec(&d.join("stubs/basename"), "#!/bin/sh\necho \"${1##*/}\"\n");
        write_exec(
            &d.join("stubs/node"),
            "#!/bin/sh\ncase \"$1\" in --version) echo v20.0.0;; *) echo 20;; esac\n",
        );
        for rec in ["npm", "cargo"] {
            write_exec(
                &d.join("stubs").join(rec),
                &format!("#!/bin/sh\n{record}exit 0\n"),
            );
        }
        let script = std::fs::read_to_string(d.join("repo/scripts/install.sh")).unwrap();
        let mut stubbed_python = false;
        for cmd in quoted_block(&script, "APP_COMMANDS")
            .into_iter()
            .chain(quoted_block(&script, "TESTS_COMMANDS"))
            .chain(["tauri-driver", "cargo-nextest", "virtiofsd"].map(String::from))
        {
            if cmd == "python3" {
                stubbed_python = true;
                // `python3 -m venv DIR` makes a venv whose pip records its calls.
                write_exec(
                    &d.join("stubs/python3"),
                    &format!(
                        "#!/bin/sh\n{record}\
                         if [ \"$1 $2\" = '-m venv' ]; then mkdir -p \"$3/bin\"\n\
                         printf '#!/bin/sh\\nexit 0\\n' >\"$3/bin/python\"\n\
                         printf '#!/bin/sh\\nprintf \"%%s\\\\n\" \"pip $*\" >>{s}/calls\\n' >\"$3/bin/pip\"\n\
                         chmod +x \"$3/bin/python\" \"$3/bin/pip\"; fi\n"
                    ),
                );
                continue;
            }
            write_exec(&d.join("stubs").join(cmd), "#!/bin/sh\nexit 0\n");
        }
        assert!(stubbed_python, "install.sh checks for python3 in its app group");
        Sandbox { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn group(&self, name: &str) -> Vec<String> {
        let script = std::fs::read_to_string(self.path("repo/scripts/install.sh")).unwrap();
        quoted_block(&script, name)
    }

    fn mark_installed(&self, pkgs: &[String]) {
        let mut all = std::fs::read_to_string(self.path("state/installed")).unwrap();
        for p in pkgs {
            all.push_str(p);
            all.push('\n');
        }
        std::fs::write(self.path("state/installed"), all).unwrap();
    }

    fn run(&self, args: &[&str]) -> Output {
        std::fs::write(self.path("state/calls"), "").unwrap();
        let path = format!("{}:{}", self.path("stubs").display(), self.path("bin").display());
        Command::new(self.path("bin/bash"))
            .arg(self.path("repo/scripts/install.sh"))
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.path("home"))
            .env("CARGO_HOME", self.path("home/.cargo"))
            .env("BERTH_CONTAINERS_CONF", self.path("containers.conf"))
            .output()
            .unwrap()
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("state/calls"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn installed_by(call: &str) -> BTreeSet<String> {
    call.split_whitespace()
        .skip(2)
        .filter(|a| !a.starts_with('-'))
        .map(str::to_string)
        .collect()
}

#[test]
fn stale_lists_are_refreshed_before_the_app_group_is_installed() {
    let sb = Sandbox::new();
    let o = sb.run(&["app"]);
    assert!(o.status.success(), "{}", text(&o));
    let calls = sb.calls();
    assert_eq!(
        calls.len(),
        2,
        "one update, one install: {calls:#?}\n{}",
        text(&o)
    );
    assert_eq!(
        calls[0], "apt-get update -qq",
        "the refresh comes first: {calls:#?}"
    );
    assert!(calls[1].starts_with("apt-get install "), "{calls:#?}");
    let app: BTreeSet<String> = sb.group("APP_GROUP").into_iter().collect();
    assert_eq!(installed_by(&calls[1]), app, "exactly the app group");
    for tests_only in ["podman", "buildah", "docker.io", "dunst", "webkit2gtk-driver"] {
        assert!(
            !installed_by(&calls[1]).contains(tests_only),
            "{tests_only} is not the app's"
        );
    }
    // The app group needs no podman configuration.
    assert!(!sb.path("containers.conf").exists());
}

#[test]
fn the_tests_group_installs_both_groups_and_configures_podman() {
    let sb = Sandbox::new();
    let o = sb.run(&["tests"]);
    assert!(o.status.success(), "{}", text(&o));
    let calls: Vec<String> = sb.calls().into_iter().filter(|c| c.starts_with("apt-")).collect();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0], "apt-get update -qq");
    let both: BTreeSet<String> = sb
        .group("APP_GROUP")
        .into_iter()
        .chain(sb.group("TESTS_GROUP"))
        .collect();
    assert_eq!(installed_by(&calls[1]), both);
    let conf = std::fs::read_to_string(sb.path("containers.conf")).unwrap();
    assert!(conf.contains("runtime = \"runc\""), "{conf}");
    // The Python SDK goes into a venv of its own, after the packages.
    let all = sb.calls();
    let venv = all
        .iter()
        .position(|c| c.starts_with("python3 -m venv "))
        .expect("a venv is made");
    let pip = all
        .iter()
        .position(|c| c.starts_with("pip install"))
        .expect("the SDK is installed");
    assert!(venv > all.iter().position(|c| c.starts_with("apt-get install")).unwrap() && pip > venv);
    assert!(all[pip].contains("docker=="), "{all:#?}");
}

#[test]
fn only_the_missing_packages_are_installed_after_a_refresh() {
    let sb = Sandbox::new();
    let app = sb.group("APP_GROUP");
    sb.mark_installed(&app[1..]);
    let o = sb.run(&["app"]);
    assert!(o.status.success(), "{}", text(&o));
    let calls = sb.calls();
    assert_eq!(
        calls,
        vec![
            "apt-get update -qq".to_string(),
            format!("apt-get install -y -qq --no-install-recommends {}", app[0])
        ]
    );
}

#[test]
fn nothing_missing_means_no_apt_call_at_all() {
    let sb = Sandbox::new();
    let all: Vec<String> = sb
        .group("APP_GROUP")
        .into_iter()
        .chain(sb.group("TESTS_GROUP"))
        .collect();
    sb.mark_installed(&all);
    for group in ["app", "tests"] {
        let o = sb.run(&[group]);
        assert!(o.status.success(), "{}", text(&o));
        let apt: Vec<String> = sb.calls().into_iter().filter(|c| c.starts_with("apt")).collect();
        assert!(
            apt.is_empty(),
            "{group}: no apt call when nothing is missing: {apt:#?}"
        );
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("already installed"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn a_second_run_is_a_no_op() {
    let sb = Sandbox::new();
    assert!(sb.run(&["tests"]).status.success());
    let o = sb.run(&["tests"]);
    assert!(o.status.success(), "{}", text(&o));
    let apt: Vec<String> = sb.calls().into_iter().filter(|c| c.starts_with("apt")).collect();
    assert!(apt.is_empty(), "{apt:#?}");
    // npm ci and cargo install are not repeated either.
    assert!(sb.calls().is_empty(), "{:#?}", sb.calls());
}

#[test]
fn a_failed_refresh_stops_before_installing_with_one_sentence() {
    let sb = Sandbox::new();
    std::fs::write(sb.path("state/fail-update"), "").unwrap();
    let o = sb.run(&["app"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert_eq!(
        sb.calls(),
        vec!["apt-get update -qq".to_string()],
        "no install after a failed update"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("could not refresh the package lists") && err.contains("then run this again"),
        "{err}"
    );
}

#[test]
fn a_command_still_missing_after_the_install_is_named() {
    let sb = Sandbox::new();
    std::fs::remove_file(sb.path("stubs/hyperfine")).unwrap();
    let o = sb.run(&["tests"]);
    assert!(!o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("hyperfine is still missing"), "{err}");
    // The app group does not need it.
    let o = sb.run(&["app"]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_unknown_group_is_refused() {
    let sb = Sandbox::new();
    let o = sb.run(&["everything"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(sb.calls().is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown group"));
}
