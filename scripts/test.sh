#!/usr/bin/env bash
# The whole test-suite in one command: tools, formatting, lints, build, tests.
# Honours CARGO_TARGET_DIR if set. Exits non-zero on the first failing stage
# (tests themselves run with --no-fail-fast so every failure is reported).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

stage() { printf '\n==> test.sh: %s\n' "$*"; }

stage "install the app and tests groups (scripts/install.sh tests)"
bash "$ROOT/scripts/install.sh" tests

if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    stage "using CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
fi

# The desktop app embeds ui/dist at compile time, so the UI is built before any cargo step.
stage "ui: vitest unit tests and vite build (ui/)"
(cd "$ROOT/ui" && npx vitest run && npm run build --silent)

stage "cargo fmt --all --check"
cargo fmt --all --check

stage "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

stage "cargo build --workspace --all-targets"
cargo build --workspace --all-targets

# Fixtures are built once here rather than racing inside the first tests.
stage "fixtures (tests/fixtures/make-fixtures.sh)"
FIXTURES_BIG=1 bash "$ROOT/tests/fixtures/make-fixtures.sh" "${BERTH_FIXTURES:-$ROOT/tests/fixtures/out}"

stage "cargo nextest run --workspace --no-fail-fast"
cargo nextest run --workspace --no-fail-fast

stage "desktop: generated TypeScript types (ui/src/generated) match src-tauri's DTOs"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" diff --exit-code -- ui/src/generated \
        || { echo "ui/src/generated is stale: commit what cargo test -p berth-desktop wrote"; exit 1; }
fi

stage "all green"
