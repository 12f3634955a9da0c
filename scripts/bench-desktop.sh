#!/usr/bin/env bash
# Desktop benchmark (release build): launch → containers list rendered, idle PSS of the app
# + WebKit processes + embedded engine with 21 containers, and rendering / searching a
# 1,000,000-line log in the real window (Xvfb + tauri-driver + WebKitWebDriver).
# Targets (issue 7): launch ≤ 1 s; PSS ≤ 250 MB; log search ≤ 200 ms. Figures → BENCHMARKS.md.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/install.sh tests >/dev/null
export BERTH_FIXTURES=${BERTH_FIXTURES:-$repo/tests/fixtures/out}
bash tests/fixtures/make-fixtures.sh "$BERTH_FIXTURES" >/dev/null
(cd ui && npm run build --silent >/dev/null)
cargo build --release -p berth --quiet
# The feature `tauri build` (scripts/package-desktop.sh) compiles with: the app measured is
# the one the .deb ships, and the two share their release artifacts.
echo "==> cargo test --release -p berth-desktop --features tauri/custom-protocol --test bench -- --ignored --nocapture"
cargo test --release -p berth-desktop --features tauri/custom-protocol --test bench -- --ignored --nocapture 2>&1 \
  | grep -E '^(launch|idle|render|search|  pss|screenshots|test result)|panicked|Error' 
