#!/usr/bin/env python3
"""Writes one malicious layer tarball per attack, for berth-layers' escape tests.

usage: craft_malicious.py OUT_DIR OUTSIDE_DIR

OUTSIDE_DIR is an absolute directory next to the layer directory under test, holding a
file named 'canary'; the layer will be unpacked into a sibling of OUTSIDE_DIR, so
'../outside' from the layer root reaches it. Every archive starts with a harmless file so
that the unpacker has already written something when the attack arrives (the test checks
that the half-unpacked layer is removed).

Also writes the benign 'symlink_overwrite.tar', which replaces a symlink pointing outside
with a regular file: it must unpack, and must not write through the symlink.
"""

import io
import os
import sys
import tarfile


def add_file(tar, name, data=b"pwned\n", mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    tar.addfile(info, io.BytesIO(data))


def add_symlink(tar, name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    tar.addfile(info)


def add_hardlink(tar, name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = target
    info.mode = 0o644
    tar.addfile(info)


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def write(out_dir, filename, build, fmt=tarfile.GNU_FORMAT):
    with tarfile.open(os.path.join(out_dir, filename), "w", format=fmt) as tar:
        add_file(tar, "./ok.txt", b"harmless\n")
        build(tar)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    out_dir, outside = sys.argv[1], sys.argv[2]
    if not os.path.isabs(outside):
        sys.exit("OUTSIDE_DIR must be absolute")
    os.makedirs(out_dir, exist_ok=True)
    outside_name = os.path.basename(outside.rstrip("/"))

    # A file climbing out of the layer with '..'.
    write(out_dir, "dotdot.tar", lambda t: add_file(t, f"../{outside_name}/pwned"))
    # The same, hidden behind a directory and a PAX long name.
    write(
        out_dir,
        "dotdot_pax.tar",
        lambda t: (add_dir(t, "./sub/"), add_file(t, "sub/../../" + outside_name + "/" + "p" * 150)),
        fmt=tarfile.PAX_FORMAT,
    )
    # An absolute entry name.
    write(out_dir, "absolute.tar", lambda t: add_file(t, f"{outside}/pwned"))
    # A directory symlink to the outside (absolute targets are legal), then a file through it.
    write(
        out_dir,
        "symlink_escape.tar",
        lambda t: (add_symlink(t, "a", outside), add_file(t, "a/pwned")),
    )
    # A relative symlink whose target climbs above the layer root.
    write(
        out_dir,
        "symlink_relative_climb.tar",
        lambda t: (add_dir(t, "x/"), add_symlink(t, "x/evil", "../../../etc"), add_file(t, "x/evil/pwned")),
    )
    # Hard links to files outside: absolute, and climbing.
    write(out_dir, "hardlink_escape.tar", lambda t: add_hardlink(t, "passwd", "/etc/passwd"))
    write(
        out_dir,
        "hardlink_climb.tar",
        lambda t: add_hardlink(t, "canary", f"../{outside_name}/canary"),
    )
    # A hard link whose target resolves through a symlink that points outside.
    write(
        out_dir,
        "hardlink_through_symlink.tar",
        lambda t: (add_symlink(t, "s", outside), add_hardlink(t, "h", "s/canary")),
    )
    # A whiteout that names the parent directory.
    write(out_dir, "whiteout_dotdot.tar", lambda t: add_file(t, "./.wh..", b""))

    # Benign: a symlink to the outside canary, replaced by a regular file.
    write(
        out_dir,
        "symlink_overwrite.tar",
        lambda t: (add_symlink(t, "c", f"{outside}/canary"), add_file(t, "c", b"replaced\n")),
    )


if __name__ == "__main__":
    main()
