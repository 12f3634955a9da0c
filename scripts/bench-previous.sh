#!/usr/bin/env bash
# This build side by side with a previous one (issue 12: the redesign must not be slower),
# and podman, on the same fixtures in one run, interleaved rounds, medians and ratios:
#   1. `run --rm busybox true`
#   2. 20 concurrent `run -d busybox sleep 60` (wall time until all started)
#   3. `ps -a` and `images` with 20 containers (what one API round trip costs a command)
#
#   BERTH_BIN=target/release/berth PREV_REV=51839a0 ROUNDS=21 bash scripts/bench-previous.sh
# The previous binary is BERTH_PREV if set; else PREV_REV is built (release) from a git
# worktree into ${CARGO_TARGET_DIR:-target}-prev.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH=bench-previous
. "$ROOT/scripts/bench-lib.sh"
ROUNDS="${ROUNDS:-15}"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

need docker-registry skopeo podman python3 curl git
if [ -z "${BERTH_PREV:-}" ]; then
    [ -n "${PREV_REV:-}" ] || { say "set BERTH_PREV to the previous berth binary, or PREV_REV to a git revision to build"; exit 1; }
    WT="$TARGET-prev/src"
    if [ ! -d "$WT" ]; then
        git -C "$ROOT" worktree add --detach "$WT" "$PREV_REV" >/dev/null
    else
        git -C "$WT" checkout -q --detach "$PREV_REV"
    fi
    say "building $PREV_REV (release) in $WT"
    (cd "$WT" && CARGO_TARGET_DIR="$TARGET-prev" cargo build --release -q -p berth)
    BERTH_PREV="$TARGET-prev/release/berth"
fi
FIXTURES_BIG=1 bash "$ROOT/tests/fixtures/make-fixtures.sh" "$FIXTURES" >/dev/null

TMP="$(mktemp -d /tmp/bp.XXXXXX)"
N=("$BERTH_BIN" --root "$TMP/new")
O=("$BERTH_PREV" --root "$TMP/old")
P=(podman --root "$TMP/podman" --runroot "$TMP/pr")
cleanup() {
    rm_containers "${N[@]}"
    rm_containers "${O[@]}"
    "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
    remove_tmp
}
trap cleanup EXIT

start_registry "$TMP"
push_fixture busybox bench/busybox
BB="127.0.0.1:$PORT/bench/busybox:latest"
"${N[@]}" pull -q "$BB" >/dev/null
"${O[@]}" pull -q "$BB" >/dev/null
"${P[@]}" pull -q --tls-verify=false "$BB" >/dev/null

say "1/3: run --rm busybox true ($ROUNDS rounds)"
for i in $(seq "$ROUNDS"); do
    timed new_true "${N[@]}" run --rm "$BB" true
    timed old_true "${O[@]}" run --rm "$BB" true
    timed podman_true "${P[@]}" run --rm "$BB" true
done

say "2/3: 20 concurrent run -d (5 rounds)"
twenty() {
    local name=$1 s e pids=(); shift
    s=$(now); for j in $(seq 20); do "$@" run -d "$BB" sleep 60 >/dev/null & pids+=($!); done
    wait "${pids[@]}"; e=$(now); record "$name" "$e" "$s"
}
for i in $(seq 5); do
    twenty new_20 "${N[@]}"
    twenty old_20 "${O[@]}"
    if [ "$i" -lt 5 ]; then
        "${N[@]}" rm -f $("${N[@]}" ps -aq) >/dev/null
        "${O[@]}" rm -f $("${O[@]}" ps -aq) >/dev/null
    fi
done

say "3/3: ps -a and images with 20 containers ($ROUNDS rounds)"
for i in $(seq "$ROUNDS"); do
    timed new_ps "${N[@]}" ps -a
    timed old_ps "${O[@]}" ps -a
    timed new_images "${N[@]}" images
    timed old_images "${O[@]}" images
done

python3 - "$TMP" <<'PY'
import statistics, sys, os
tmp = sys.argv[1]
def med(n):
    with open(os.path.join(tmp, n + ".times")) as f:
        return statistics.median(float(l) for l in f if l.strip())
t = {n: med(n) for n in ["new_true", "old_true", "podman_true", "new_20", "old_20",
                         "new_ps", "old_ps", "new_images", "old_images"]}
print(f"run --rm true    new {t['new_true']:.3f}s  previous {t['old_true']:.3f}s  podman {t['podman_true']:.3f}s")
print(f"  new/previous {t['new_true']/t['old_true']:.2f}x (target <= 1.3)   new/podman {t['new_true']/t['podman_true']:.2f}x")
print(f"20 x run -d      new {t['new_20']:.3f}s  previous {t['old_20']:.3f}s  new/previous {t['new_20']/t['old_20']:.2f}x")
print(f"ps -a (20)       new {t['new_ps']:.3f}s  previous {t['old_ps']:.3f}s  new/previous {t['new_ps']/t['old_ps']:.2f}x")
print(f"images           new {t['new_images']:.3f}s  previous {t['old_images']:.3f}s  new/previous {t['new_images']/t['old_images']:.2f}x")
PY
