#!/usr/bin/env bash
# Build benchmark (issue 5): the same Dockerfile and context built by Berth and by
# `podman build` (separate roots), interleaved round by round:
#   1. cold build (--no-cache; the base image is already local for both)
#   2. fully cached rebuild
#   3. rebuild after changing app.py (steps from its COPY rerun)
# The RUN step does local work only (no network), so runs are reproducible.
# Prints medians and ratios.
#
#   BERTH_BIN=target/release/berth ROUNDS=7 bash scripts/bench-build.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH=bench-build
. "$ROOT/scripts/bench-lib.sh"
ROUNDS="${ROUNDS:-7}"

need docker-registry skopeo podman python3 curl
FIXTURES_BIG=1 bash "$ROOT/tests/fixtures/make-fixtures.sh" "$FIXTURES" >/dev/null

TMP="$(mktemp -d /tmp/bb.XXXXXX)"  # short: podman refuses a runroot path over 50 characters
cleanup() {
    podman --root "$TMP/podman" --runroot "$TMP/pr" rmi -af >/dev/null 2>&1 || true
    remove_tmp
}
trap cleanup EXIT

start_registry "$TMP"
push_fixture python bench/python
BASE="127.0.0.1:$PORT/bench/python:latest"
B=("$BERTH_BIN" --root "$TMP/berth")
P=(podman --root "$TMP/podman" --runroot "$TMP/pr")
"${B[@]}" pull -q "$BASE" >/dev/null
"${P[@]}" pull -q --tls-verify=false "$BASE" >/dev/null

CTX="$TMP/ctx"
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<EOF2
FROM $BASE
WORKDIR /app
COPY requirements.txt .
RUN python3 -c "import json; json.dump([i * i for i in range(200000)], open('/opt/squares.json', 'w'))" && python3 -m compileall -q /usr/lib/python3/dist-packages >/dev/null
COPY . .
EXPOSE 5000
CMD ["python3", "app.py"]
EOF2
printf 'flask\n' >"$CTX/requirements.txt"
printf 'print("hello from the benchmark app")\n' >"$CTX/app.py"
printf '*.log\n' >"$CTX/.dockerignore"

timed() {
    local name=$1 s e
    shift
    s=$(now)
    "$@" >"$TMP/last.out" 2>&1 || { say "$name failed: $*"; cat "$TMP/last.out" >&2; exit 1; }
    e=$(now)
    record "$name" "$e" "$s"
}
check_cached() {
    # A "cached" round must really have used the cache for every step after FROM.
    local n
    n=$(grep -c -E 'Using cache|^--> Using cache' "$TMP/last.out" || true)
    [ "$n" -ge 6 ] || { say "$1: expected 6 cached steps, saw $n"; cat "$TMP/last.out" >&2; exit 1; }
}

for i in $(seq "$ROUNDS"); do
    timed berth_cold "${B[@]}" build --no-cache -t bench:cold "$CTX"
    timed podman_cold "${P[@]}" build --no-cache -t bench:cold "$CTX"
    timed berth_cached "${B[@]}" build -t bench:cold "$CTX"
    check_cached berth
    timed podman_cached "${P[@]}" build -t bench:cold "$CTX"
    check_cached podman
    printf '# round %s\n' "$i" >>"$CTX/app.py"
    timed berth_changed "${B[@]}" build -t bench:cold "$CTX"
    timed podman_changed "${P[@]}" build -t bench:cold "$CTX"
    say "round $i: cold $(tail -n1 "$TMP/berth_cold.times")s / $(tail -n1 "$TMP/podman_cold.times")s, cached $(tail -n1 "$TMP/berth_cached.times")s / $(tail -n1 "$TMP/podman_cached.times")s, app.py changed $(tail -n1 "$TMP/berth_changed.times")s / $(tail -n1 "$TMP/podman_changed.times")s (berth / podman)"
done

python3 - "$TMP" <<'PY'
import statistics, sys, os
tmp = sys.argv[1]
def med(name):
    with open(os.path.join(tmp, name + ".times")) as f:
        return statistics.median(float(l) for l in f if l.strip())
print(f"{'scenario':<28}{'berth':>10}{'podman':>10}{'podman/berth':>14}")
for key, label in (("cold", "cold build (--no-cache)"), ("cached", "fully cached rebuild"), ("changed", "rebuild after app.py change")):
    b, p = med("berth_" + key), med("podman_" + key)
    print(f"{label:<28}{b:>9.3f}s{p:>9.3f}s{p / b:>13.1f}x")
PY
