#!/usr/bin/env bash
# Build the .deb: the Berth Desktop app plus the `berth` CLI (installed as /usr/bin/berth;
# the app uses it as the shim for containers its embedded engine starts). Only the deb
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
# The Tauri CLI finds its project from the current folder (src-tauri holds tauri.conf.json).
(cd src-tauri && ../ui/node_modules/.bin/tauri build --bundles deb) 2>&1 | tail -8
ls -1 "$target"/release/bundle/deb/*.deb
