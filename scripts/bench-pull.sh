#!/usr/bin/env bash
# Pull benchmark: berth vs skopeo vs podman pulling the ~150 MB multi-layer
# `python` fixture from a local docker-registry over loopback.
#
#   BERTH_BIN=target/release/berth ROUNDS=5 scripts/bench-pull.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROUNDS="${ROUNDS:-5}"
BERTH_BIN="${BERTH_BIN:-$ROOT/target/release/berth}"
FIXTURES="${BERTH_FIXTURES:-$ROOT/tests/fixtures/out}"

say() { printf 'bench-pull: %s\n' "$*" >&2; }

if [ ! -x "$BERTH_BIN" ]; then
    say "berth binary not found at $BERTH_BIN: build it first (cargo build --release -p berth) or set BERTH_BIN"
    exit 1
fi
for bin in docker-registry skopeo podman python3; do
    command -v "$bin" >/dev/null 2>&1 || { say "missing $bin: run bash scripts/install.sh tests"; exit 1; }
done

say "ensuring big fixtures in $FIXTURES"
FIXTURES_BIG=1 bash "$ROOT/tests/fixtures/make-fixtures.sh" "$FIXTURES"

TMP="$(mktemp -d /tmp/bb.XXXXXX)"  # short: podman refuses a runroot path over 50 characters
REG_PID=""
cleanup() {
    if [ -n "$REG_PID" ]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
    fi
    # podman/berth roots may hold read-only or overlay-mounted content.
    { grep -F " $TMP/" /proc/mounts || true; } | awk '{print $2}' | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null || true; done
    chmod -R u+w "$TMP" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
mkdir -p "$TMP/storage"
cat >"$TMP/config.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $TMP/storage
http:
  addr: 127.0.0.1:$PORT
YML
docker-registry serve "$TMP/config.yml" >"$TMP/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 1 100); do
    if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/v2/', timeout=1)" 2>/dev/null; then
        break
    fi
    kill -0 "$REG_PID" 2>/dev/null || { cat "$TMP/registry.log" >&2; say "registry died"; exit 1; }
    sleep 0.1
done
REF="127.0.0.1:$PORT/bench/python:latest"
say "registry pid $REG_PID on 127.0.0.1:$PORT; pushing python fixture"
skopeo copy -q --all --preserve-digests --dest-tls-verify=false \
    "oci:$FIXTURES/python:latest" "docker://$REF"

# The pulls land on a fresh ext4 filesystem of their own (a loop device), so that what
# the rest of the machine did before (deleted files, dirty pages) does not skew them.
PULLS="$TMP"
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && [ "${BENCH_LOOPFS:-1}" = 1 ]; then
    truncate -s 16G "$TMP/pulls.img"
    mkfs.ext4 -q -F "$TMP/pulls.img"
    mkdir -p "$TMP/pulls"
    mount -o loop "$TMP/pulls.img" "$TMP/pulls"
    PULLS="$TMP/pulls"
    say "pulling into a fresh ext4 filesystem at $PULLS"
else
    say "pulling into $TMP (set BENCH_LOOPFS=1 and run as root for an isolated filesystem)"
fi

now() { date +%s.%N; }
# time_cmd NAME CMD...: runs CMD, appends elapsed seconds to $TMP/NAME.times.
time_cmd() {
    local name="$1" start end
    shift
    start="$(now)"
    if ! "$@" >"$TMP/$name.out" 2>&1; then
        cat "$TMP/$name.out" >&2
        say "$name failed"
        exit 1
    fi
    end="$(now)"
    python3 -c "print(f'{$end - $start:.3f}')" >>"$TMP/$name.times"
}

run_berth() {
    local d
    d="$(mktemp -d "$PULLS/berth.XXXXXX")"
    time_cmd berth "$BERTH_BIN" --root "$d" pull "$REF"
}
run_skopeo() {
    local d
    d="$(mktemp -d "$PULLS/skopeo.XXXXXX")"
    time_cmd skopeo skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$d:x"
}
run_podman() {
    local d
    d="$(mktemp -d "$PULLS/podman.XXXXXX")"
    time_cmd podman podman --root "$d/root" --runroot "$d/rr" pull -q --tls-verify=false "$REF"
}

# Fairness: nothing is deleted until the end (ext4 skips recently deleted inodes when it
# allocates new ones, so deleting one tool's files slows whichever tool runs next), dirty
# pages are flushed before each timed pull so no tool pays for another's writeback, and
# the order rotates each round.
tools=(berth skopeo podman)
for round in $(seq 1 "$ROUNDS"); do
    for i in 0 1 2; do
        tool="${tools[$(( (i + round) % 3 ))]}"
        sync
        "run_$tool"
    done
    say "round $round: berth $(tail -n1 "$TMP/berth.times")s, skopeo $(tail -n1 "$TMP/skopeo.times")s, podman $(tail -n1 "$TMP/podman.times")s"
done

python3 - "$TMP" <<'PY'
import statistics, sys
tmp = sys.argv[1]
med = {}
for tool in ("berth", "skopeo", "podman"):
    times = [float(x) for x in open(f"{tmp}/{tool}.times").read().split()]
    med[tool] = statistics.median(times)
    print(f"{tool:7s} times: {' '.join(f'{t:.3f}' for t in times)}  median {med[tool]:.3f}s")
print(f"ratio podman/berth: {med['podman'] / med['berth']:.2f}x")
print(f"ratio skopeo/berth: {med['skopeo'] / med['berth']:.2f}x")
PY
