mod common;

use common::*;

#[test]
fn echo_hi() {
    let dir = tempfile::tempdir().unwrap();
    let root = busybox_rootfs(dir.path());
    let (code, out, err) = sh(&root, "echo hi");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "hi\n", ""));
}
