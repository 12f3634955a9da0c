//! Runs the real `berth` binary against a private store, as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The `berth` binary under test: `$BERTH_BIN`, else the one cargo built next to this
/// test binary (`target/<profile>/berth`). `scripts/test.sh` builds the workspace first.
pub fn bin() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary> → target/<profile>/berth
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = profile_dir.join("berth");
    assert!(
        bin.exists(),
        "berth binary not found at {}: run `cargo build -p berth` first (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A `berth` with its own store root and its own docker config directory.
pub struct Berth {
    root: tempfile::TempDir,
    docker_config: tempfile::TempDir,
    global: Vec<String>,
    env: Vec<(String, String)>,
}

/// A test that fails half-way must not leave containers running on the machine (their
/// shims outlive the test process): whatever is left in this root is removed.
impl Drop for Berth {
    fn drop(&mut self) {
        let has_containers = std::fs::read_dir(self.root().join("containers"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false);
        if !has_containers {
            return;
        }
        remove_all_containers(|args| self.run(args));
    }
}

/// `rm -f` of every container `berth` (one store's, as some user) lists.
pub(crate) fn remove_all_containers(berth: impl Fn(&[&str]) -> Run) {
    let ids = berth(&["ps", "-aq"]).stdout;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(ids);
        let _ = berth(&args);
    }
}

impl Default for Berth {
    fn default() -> Self {
        Self::new()
    }
}

impl Berth {
    pub fn new() -> Berth {
        Berth {
            root: tempfile::tempdir().expect("tempdir"),
            docker_config: tempfile::tempdir().expect("tempdir"),
            global: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Adds a global flag to every command (e.g. `--registry-mirror URL`).
    pub fn with_global(mut self, args: &[&str]) -> Berth {
        self.global.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Adds a variable to every command's environment (and a daemon's started from it).
    pub fn with_env(mut self, key: &str, value: &str) -> Berth {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    pub fn docker_config(&self) -> &Path {
        self.docker_config.path()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(&self.global)
            .args(args)
            .env("BERTH_ROOT", self.root.path())
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env_remove("RUST_BACKTRACE")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.command(args).output().expect("spawn berth");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "berth {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            r.code, r.stdout, r.stderr
        );
        r.stdout
    }

    /// Runs and expects failure; returns the run. Checks the error is one plain
    /// `Error: …` sentence and not a panic or backtrace.
    pub fn fails(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_ne!(r.code, 0, "berth {args:?} should have failed:\n{}", r.stdout);
        assert!(
            !r.stderr.contains("panicked") && !r.stderr.contains("stack backtrace"),
            "berth {args:?} panicked:\n{}",
            r.stderr
        );
        assert!(r.stderr.contains("Error: "), "no plain error line:\n{}", r.stderr);
        r
    }

    /// Checks the store's invariants: every blob hashes to its name, metadata is valid,
    /// and every recorded image has all its blobs and layer directories.
    pub fn assert_store_consistent(&self) {
        let blobs = self.root().join("blobs/sha256");
        if let Ok(entries) = std::fs::read_dir(&blobs) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let data = std::fs::read(e.path()).expect("read blob");
                assert_eq!(
                    crate::sha256_digest(&data),
                    format!("sha256:{name}"),
                    "blob {name} in the store does not match its digest"
                );
            }
        }
        let meta = self.root().join("metadata.json");
        if meta.exists() {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).expect("read metadata"))
                .expect("metadata.json is JSON");
            for (_, img) in v["images"].as_object().into_iter().flatten() {
                let mut needed = vec![img["config"]["digest"].as_str().unwrap().to_string()];
                needed.push(img["manifest"]["digest"].as_str().unwrap().to_string());
                for l in img["layers"].as_array().unwrap() {
                    needed.push(l["blob"]["digest"].as_str().unwrap().to_string());
                    let diff = l["diff_id"].as_str().unwrap().trim_start_matches("sha256:");
                    assert!(
                        self.root().join("layers").join(diff).is_dir(),
                        "layer dir {diff} missing"
                    );
                }
                for d in needed {
                    let hex = d.trim_start_matches("sha256:");
                    assert!(
                        blobs.join(hex).is_file(),
                        "recorded blob {d} missing from the store"
                    );
                }
            }
        }
    }

    /// Layer directories of an image, bottom first.
    pub fn layer_dirs(&self, image: &str) -> Vec<PathBuf> {
        let out = self.ok(&["image", "inspect", "--format", "{{json .RootFS.Layers}}", image]);
        let layers: Vec<String> = serde_json::from_str(out.trim()).expect("layers JSON");
        layers
            .iter()
            .map(|d| self.root().join("layers").join(d.trim_start_matches("sha256:")))
            .collect()
    }

    /// A file's content as the container will see it: the topmost layer that has it.
    pub fn read_in_image(&self, image: &str, path: &str) -> Option<Vec<u8>> {
        self.layer_dirs(image)
            .iter()
            .rev()
            .map(|d| d.join(path.trim_start_matches('/')))
            .find(|p| p.symlink_metadata().is_ok())
            .and_then(|p| std::fs::read(p).ok())
    }
}
