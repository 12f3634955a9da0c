//! The `docker` command for people who installed only Berth (issue 15): `berth system
//! docker-command` makes a `docker` link to berth, which reads its arguments as Berth's, so
//! the lectures' `docker run …` and `docker compose up` run verbatim; never over an existing
//! docker. And the .deb's maintainer scripts, which do the same for /usr/bin/docker.

use std::path::Path;
use std::process::Command;

use berth_tests::daemon::run_of;
use berth_tests::registry::store_with_busybox;

#[test]
fn docker_is_berth_only_where_no_docker_is() {
    let (_reg, b) = store_with_busybox();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("bin");
    let empty = t.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();

    // This machine has docker's own CLI: it is never replaced.
    let with_docker = std::env::var("PATH").unwrap_or_default();
    let theirs = std::env::split_paths(&with_docker)
        .map(|d| d.join("docker"))
        .find(|p| p.exists())
        .expect("the docker CLI: run bash scripts/install.sh tests");
    let r = run_of(
        b.command(&["system", "docker-command", "--dir", dir.to_str().unwrap()])
            .env("PATH", &with_docker),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "a docker command is already installed at {}",
            theirs.display()
        )) && r.stderr.trim().lines().count() == 1,
        "{r:?}"
    );
    assert!(
        std::fs::symlink_metadata(dir.join("docker")).is_err(),
        "nothing was made"
    );

    // Where there is none, docker is Berth.
    let path = format!("{}:{}", dir.display(), empty.display());
    let r = run_of(
        b.command(&["system", "docker-command", "--dir", dir.to_str().unwrap()])
            .env("PATH", &path),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let link = dir.join("docker");
    assert_eq!(
        std::fs::canonicalize(&link).unwrap(),
        std::fs::canonicalize(berth_tests::berth::bin()).unwrap()
    );
    let docker = |args: &[&str], cwd: &Path| {
        run_of(
            Command::new(&link)
                .args(args)
                .current_dir(cwd)
                .env("BERTH_ROOT", b.root())
                .env("DOCKER_CONFIG", b.docker_config())
                .env("PATH", &path),
        )
    };
    let r = docker(
        &["run", "--rm", "--network", "none", "busybox", "echo", "as-docker"],
        t.path(),
    );
    assert_eq!((r.code, r.stdout.as_str()), (0, "as-docker\n"), "{r:?}");
    let project = t.path().join("proj");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join("compose.yaml"),
        "services:\n  app:\n    image: busybox\n    command: sleep 300\n",
    )
    .unwrap();
    let r = docker(&["compose", "up", "-d"], &project);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains(" Container proj-app-1  Started"), "{r:?}");
    assert_eq!(docker(&["compose", "ps", "--services"], &project).stdout, "app\n");
    assert_eq!(docker(&["compose", "down"], &project).code, 0);
    let r = docker(&["--help"], t.path());
    assert!(r.stdout.contains("Usage: docker"), "{r:?}");

    let status = run_of(
        b.command(&[
            "system",
            "docker-command",
            "--status",
            "--dir",
            dir.to_str().unwrap(),
        ])
        .env("PATH", &path),
    );
    assert!(status.stdout.starts_with("docker is Berth"), "{status:?}");
    let r = run_of(&mut b.command(&[
        "system",
        "docker-command",
        "--remove",
        "--dir",
        dir.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(std::fs::symlink_metadata(&link).is_err());
    // Another program's docker there is left alone.
    std::fs::write(&link, "#!/bin/sh\n").unwrap();
    let r = run_of(&mut b.command(&[
        "system",
        "docker-command",
        "--remove",
        "--dir",
        dir.to_str().unwrap(),
    ]));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(link.is_file());
}

/// The .deb's postinst links /usr/bin/docker to berth only where the computer has no
/// docker; its prerm removes only that link (run against a root of their own, DPKG_ROOT).
#[test]
fn the_debs_scripts_link_docker_only_where_none_is_and_remove_only_theirs() {
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../src-tauri/deb");
    let conf: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../src-tauri/tauri.conf.json"))
            .unwrap(),
    )
    .unwrap();
    let deb = &conf["bundle"]["linux"]["deb"];
    assert_eq!(deb["postInstallScript"], "deb/postinst");
    assert_eq!(deb["preRemoveScript"], "deb/prerm");
    let run = |script: &str, arg: &str, root: &Path| {
        run_of(
            Command::new("sh")
                .arg(scripts.join(script))
                .arg(arg)
                .env("DPKG_ROOT", root),
        )
    };
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("usr/local/bin")).unwrap();
    let docker = root.join("usr/bin/docker");

    assert_eq!(run("postinst", "configure", root).code, 0);
    assert_eq!(std::fs::read_link(&docker).unwrap(), Path::new("berth"));
    assert_eq!(run("postinst", "configure", root).code, 0, "again: idempotent");
    assert_eq!(run("prerm", "remove", root).code, 0);
    assert!(std::fs::symlink_metadata(&docker).is_err());

    // Docker's CLI in /usr/local/bin: no link; a docker in /usr/bin: never removed.
    std::fs::write(root.join("usr/local/bin/docker"), "#!/bin/sh\n").unwrap();
    assert_eq!(run("postinst", "configure", root).code, 0);
    assert!(std::fs::symlink_metadata(&docker).is_err());
    std::fs::write(&docker, "#!/bin/sh\n").unwrap();
    assert_eq!(run("prerm", "remove", root).code, 0);
    assert!(docker.is_file());
}
