//! `berth system check [--repair]` on a real store: a sound store passes; each kind of
//! damage and leftover is named; the repair removes exactly those and leaves a running
//! container and its image alone.

use std::process::Command;

use berth_tests::berth::Berth;
use berth_tests::fixtures;
use berth_tests::registry::{Mode, Registry};

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

#[test]
fn check_names_damage_and_repair_keeps_what_is_sound() {
    let reg = Registry::start(Mode::Plain);
    let b = Berth::new();
    for name in ["busybox", "whiteout", "repeated"] {
        reg.push_fixture(&fixtures::image(name), &format!("test/{name}:latest"));
        b.ok(&["pull", "-q", &reg.reference(&format!("test/{name}"))]);
    }
    let busybox = reg.reference("test/busybox");
    let whiteout = reg.reference("test/whiteout");
    let repeated = reg.reference("test/repeated");
    b.ok(&["run", "-d", "--name", "keeper", &busybox, "sleep", "300"]);
    b.ok(&["run", "--name", "done", &busybox, "true"]);

    let ok = b.run(&["system", "check"]);
    assert_eq!(ok.code, 0, "a sound store passes:\n{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains(": no problems"), "{}", ok.stdout);

    // Damage: a corrupt config blob (repeated), a missing layer directory (whiteout's top
    // layer, which busybox does not share).
    let root = b.root().to_path_buf();
    let repeated_id = b
        .ok(&["images", "-q", "--no-trunc", &repeated])
        .trim()
        .to_string();
    let config = root
        .join("blobs/sha256")
        .join(repeated_id.trim_start_matches("sha256:"));
    sh(&format!(
        "chmod u+w {0} && printf garbage >> {0}",
        config.display()
    ));
    let wo_layers = b.layer_dirs(&whiteout);
    let top = wo_layers.last().unwrap().clone();
    assert!(
        !b.layer_dirs(&busybox).contains(&top),
        "the victim layer is whiteout's own"
    );
    std::fs::remove_dir_all(&top).unwrap();
    // Leftovers: an unreferenced blob, an abandoned partial download, a container
    // directory without a record, a mount nothing holds.
    let stray = b"a blob nobody references";
    let stray_digest = berth_tests::sha256_digest(stray);
    let stray_path = root
        .join("blobs/sha256")
        .join(stray_digest.trim_start_matches("sha256:"));
    std::fs::write(&stray_path, stray).unwrap();
    let partial = root.join("ingest").join(format!("{}.partial", "ab".repeat(32)));
    std::fs::write(&partial, b"half a download").unwrap();
    let orphan = root.join("containers").join("cd".repeat(32));
    std::fs::create_dir_all(orphan.join("upper")).unwrap();
    sh(&format!("touch -d '2 hours ago' {}", orphan.display()));
    let area = root.join("builder/tmp/999999999-deadbeef/rootfs");
    std::fs::create_dir_all(&area).unwrap();
    sh(&format!("mount -t tmpfs berth-check-test {}", area.display()));

    let bad = b.run(&["system", "check"]);
    let out = &bad.stdout;
    assert_eq!(bad.code, 1, "{out}{}", bad.stderr);
    assert!(
        out.contains(&format!("problem: blob {repeated_id} is damaged")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "needs the unpacked layer sha256:{}",
            top.file_name().unwrap().to_string_lossy()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("blob {stray_digest} (24 bytes) is not used")),
        "{out}"
    );
    assert!(
        out.contains(&format!("partial download {}", partial.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "{} holds a container with no readable record",
            orphan.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("{} is mounted but no container", area.display())),
        "{out}"
    );
    assert!(out.contains("run `berth system check --repair`"), "{out}");
    assert!(
        !out.contains("keeper") && !out.contains("container done"),
        "sound containers are fine:\n{out}"
    );
    // The check changed nothing.
    assert!(stray_path.exists() && partial.exists() && orphan.exists());

    let fixed = b.run(&["system", "check", "--repair"]);
    assert_eq!(
        fixed.code, 0,
        "after the repair nothing is left:\n{}{}",
        fixed.stdout, fixed.stderr
    );
    assert!(fixed.stdout.contains(": no problems"), "{}", fixed.stdout);
    assert!(fixed.stdout.contains("removed image"), "{}", fixed.stdout);
    assert!(!stray_path.exists() && !partial.exists() && !orphan.exists());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&area.display().to_string()),
        "the stray mount is gone"
    );

    // What was referenced and sound is untouched: busybox and its running container.
    let images = b.ok(&["images"]);
    assert!(images.contains("test/busybox"), "{images}");
    assert!(
        !images.contains("test/whiteout") && !images.contains("test/repeated"),
        "{images}"
    );
    assert_eq!(
        b.ok(&["exec", "keeper", "echo", "still-here"]).trim(),
        "still-here"
    );
    assert_eq!(b.ok(&["start", "-a", "done"]).trim(), "");
    // The damaged images come back with a pull.
    b.ok(&["pull", "-q", &repeated]);
    assert_eq!(b.ok(&["run", "--rm", &repeated, "cat", "/f"]), "one\n");
    b.ok(&["rm", "-f", "keeper", "done"]);
    let end = b.run(&["system", "check"]);
    assert_eq!(end.code, 0, "{}", end.stdout);
    b.assert_store_consistent();
}
