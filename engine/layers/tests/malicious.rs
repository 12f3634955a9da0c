//! Layers crafted with Python's tarfile (tests/craft_malicious.py) that try to write outside
//! the layer directory. Each must fail with `LayerError::Escape` naming the entry, leave no
//! layer directory behind, and leave everything outside untouched.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use berth_layers::{unpack, Compression, LayerCompression, LayerError, UnpackOptions};

const CANARY: &[u8] = b"canary: must never change\n";

fn listing(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

struct Fixture {
    _tars_tmp: tempfile::TempDir,
    tars: std::path::PathBuf,
    outer: tempfile::TempDir,
    etc_before: BTreeSet<String>,
}

impl Fixture {
    fn new() -> Fixture {
        let tars_tmp = tempfile::tempdir().unwrap();
        let outer = tempfile::tempdir().unwrap();
        let outside = outer.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("canary"), CANARY).unwrap();
        let tars = tars_tmp.path().join("tars");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/craft_malicious.py");
        let status = Command::new("python3")
            .arg(&script)
            .arg(&tars)
            .arg(&outside)
            .status()
            .expect("python3 must be on PATH to craft the malicious layers");
        assert!(status.success(), "craft_malicious.py failed: {status}");
        Fixture {
            _tars_tmp: tars_tmp,
            tars,
            outer,
            etc_before: listing(Path::new("/etc")),
        }
    }

    fn unpack(
        &self,
        tar: &str,
    ) -> (
        Result<berth_layers::UnpackedLayer, LayerError>,
        std::path::PathBuf,
    ) {
        let dest = self.outer.path().join(format!("layer-{tar}"));
        let file = fs::File::open(self.tars.join(tar)).unwrap();
        let opts = UnpackOptions {
            compression: Compression::Known(LayerCompression::None),
            preserve_ownership: rustix::process::geteuid().is_root(),
            rootless: false,
        };
        (unpack(file, &dest, &opts), dest)
    }

    fn assert_outside_untouched(&self, case: &str) {
        let expected: BTreeSet<String> = ["outside".to_string()].into();
        assert_eq!(
            listing(self.outer.path()),
            expected,
            "{case}: something was created next to the layer"
        );
        let outside = self.outer.path().join("outside");
        let expected: BTreeSet<String> = ["canary".to_string()].into();
        assert_eq!(
            listing(&outside),
            expected,
            "{case}: something was created outside the layer"
        );
        assert_eq!(
            fs::read(outside.join("canary")).unwrap(),
            CANARY,
            "{case}: canary changed"
        );
        assert_eq!(
            listing(Path::new("/etc")),
            self.etc_before,
            "{case}: /etc changed"
        );
    }
}

#[test]
fn malicious_layers_are_refused_and_cleaned_up() {
    let fx = Fixture::new();
    let outside = fx.outer.path().join("outside");
    let outside = outside.to_str().unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("dotdot.tar", "../outside/pwned".to_string()),
        ("dotdot_pax.tar", format!("sub/../../outside/{}", "p".repeat(150))),
        ("absolute.tar", format!("{outside}/pwned")),
        ("symlink_escape.tar", "a/pwned".to_string()),
        ("symlink_relative_climb.tar", "x/evil".to_string()),
        ("hardlink_escape.tar", "passwd".to_string()),
        ("hardlink_climb.tar", "canary".to_string()),
        ("hardlink_through_symlink.tar", "h".to_string()),
        ("whiteout_dotdot.tar", "./.wh..".to_string()),
    ];
    for (tar, expected_entry) in cases {
        let (result, dest) = fx.unpack(tar);
        match result {
            Err(LayerError::Escape { entry, reason }) => {
                assert_eq!(
                    entry, expected_entry,
                    "{tar}: wrong entry named (reason: {reason})"
                );
                let msg = LayerError::Escape {
                    entry: entry.clone(),
                    reason: reason.clone(),
                }
                .to_string();
                assert!(
                    msg.starts_with(&format!(
                        "tar entry '{expected_entry}' tries to write outside the layer: "
                    )),
                    "{tar}: message was {msg}"
                );
            }
            other => panic!("{tar}: expected an Escape error, got {other:?}"),
        }
        assert!(
            !dest.exists(),
            "{tar}: the half-unpacked layer {} was left behind",
            dest.display()
        );
        fx.assert_outside_untouched(tar);
    }
}

#[test]
fn replacing_a_symlink_never_writes_through_it() {
    let fx = Fixture::new();
    let (result, dest) = fx.unpack("symlink_overwrite.tar");
    let layer = result.expect("replacing a symlink with a file is legitimate");
    assert_eq!(layer.entries, 3);
    let c = dest.join("c");
    assert!(fs::symlink_metadata(&c).unwrap().file_type().is_file());
    assert_eq!(fs::read(&c).unwrap(), b"replaced\n");
    fs::remove_dir_all(&dest).unwrap();
    fx.assert_outside_untouched("symlink_overwrite.tar");
}
