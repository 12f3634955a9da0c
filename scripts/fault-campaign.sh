#!/usr/bin/env bash
# The fault campaign's long form: kill -9 at random moments of a pull, a build, run -d, rm -f,
# a daemon start and a shim start, ROUNDS times (default 100); after each round the store
# must check clean and a running container must still run (tests/it/faults.rs).
#   ROUNDS=100 [BERTH_FAULT_SEED=N] bash scripts/fault-campaign.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
cargo build -q -p berth
BERTH_FAULT_ROUNDS=${ROUNDS:-100} cargo nextest run -p berth-tests --test faults --no-capture --no-fail-fast
