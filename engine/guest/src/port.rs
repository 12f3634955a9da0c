//! Finding the host link's virtio-serial port. Without udev there is no
//! `/dev/virtio-ports/NAME` link: the port's name is in sysfs, its node in /dev.

use std::path::{Path, PathBuf};

/// The device node of the virtio-serial port called `name`, looked up in `sys`
/// (`/sys/class/virtio-ports`) and `dev` (`/dev`).
pub fn find_port(sys: &Path, dev: &Path, name: &str) -> Option<PathBuf> {
    let by_udev = dev.join("virtio-ports").join(name);
    if by_udev.exists() {
        return Some(by_udev);
    }
    let entries = std::fs::read_dir(sys).ok()?;
    for entry in entries.flatten() {
        let named = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default();
        if named.trim() == name {
            let node = dev.join(entry.file_name());
            if node.exists() {
                return Some(node);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_port_by_its_sysfs_name() {
        let t = std::env::temp_dir().join(format!("berth-port-{}", std::process::id()));
        let (sys, dev) = (t.join("sys"), t.join("dev"));
        for (port, name) in [
            ("vport0p0", ""),
            ("vport0p1", "berth.link\n"),
            ("vport0p2", "other"),
        ] {
            std::fs::create_dir_all(sys.join(port)).unwrap();
            std::fs::write(sys.join(port).join("name"), name).unwrap();
        }
        std::fs::create_dir_all(&dev).unwrap();
        assert_eq!(find_port(&sys, &dev, "berth.link"), None, "no node yet");
        std::fs::write(dev.join("vport0p1"), "").unwrap();
        assert_eq!(find_port(&sys, &dev, "berth.link"), Some(dev.join("vport0p1")));
        assert_eq!(find_port(&sys, &dev, "missing"), None);
        std::fs::create_dir_all(dev.join("virtio-ports")).unwrap();
        std::fs::write(dev.join("virtio-ports/other"), "").unwrap();
        assert_eq!(
            find_port(&sys, &dev, "other"),
            Some(dev.join("virtio-ports/other"))
        );
        let _ = std::fs::remove_dir_all(&t);
    }
}
