#!/usr/bin/env bash
# Build the .deb: the Berth Desktop app plus the `berth` CLI (installed as /usr/bin/berth;
# the app uses it as the shim for containers its embedded engine starts) and the machine's
# guest (/usr/lib/berth/guest, where `berth machine init` finds it; QEMU is a Recommends:
# on Linux the machine is the fallback, not the default). It depends on nftables (the
# engine's NAT), uidmap and passt (an ordinary user's rootless engine: newuidmap/newgidmap
# and pasta). Only the deb
# target: the AppImage bundler downloads tools from the internet, which this machine cannot.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/install.sh app
target=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release -p berth --quiet
mkdir -p src-tauri/bundle-bin
cp "$target/release/berth" src-tauri/bundle-bin/berth
# The release profile keeps line tables for benchmarks' backtraces; the packaged CLI
# does not need them (110 MB → 22 MB).
strip --strip-debug src-tauri/bundle-bin/berth
# The guest runs this same berth (build-guest.sh keys its cache on the binary's sha256).
guest=$(BERTH_BIN="$target/release/berth" bash scripts/build-guest.sh | tail -n 1)
rm -rf src-tauri/bundle-guest
mkdir -p src-tauri/bundle-guest
cp -L "$guest"/vmlinuz "$guest"/initrd.img "$guest"/manifest.txt src-tauri/bundle-guest/
[ -f "$guest/vmlinux" ] && cp -L "$guest/vmlinux" src-tauri/bundle-guest/
# The Tauri CLI finds its project from the current folder (src-tauri holds tauri.conf.json).
# Built first, stripped like the CLI (line tables: 211 MB), then bundled.
(cd src-tauri && ../ui/node_modules/.bin/tauri build --no-bundle) 2>&1 | tail -3
strip --strip-debug "$target/release/berth-desktop"
(cd src-tauri && ../ui/node_modules/.bin/tauri bundle --bundles deb) 2>&1 | tail -8
ls -1 "$target"/release/bundle/deb/*.deb
