#!/usr/bin/env bash
# Engine API benchmark (issue 6), through the real docker CLI and raw HTTP:
#   1. `docker run --rm busybox true` with DOCKER_HOST = berth daemon vs podman's API
#      service (`podman system service`), interleaved rounds, medians and ratio
#      (target <= 0.3x podman);
#   2. the API overhead of `GET /containers/json?all=1` with 200 containers (target < 5 ms
#      median), timed by one Python client over the unix socket (no process start per
#      request), with podman's figure beside it.
#
#   BERTH_BIN=target/release/berth ROUNDS=21 bash scripts/bench-api.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH=bench-api
. "$ROOT/scripts/bench-lib.sh"
ROUNDS="${ROUNDS:-15}"
DOCKER="${DOCKER_CLI:-/usr/local/bin/docker}"

need docker-registry skopeo podman python3 curl
[ -x "$DOCKER" ] || { say "docker CLI not found at $DOCKER: install docker-ce-cli (or set DOCKER_CLI)"; exit 1; }
bash "$ROOT/tests/fixtures/make-fixtures.sh" "$FIXTURES" >/dev/null

TMP="$(mktemp -d /tmp/bapi.XXXXXX)"
PIDS=()
B=("$BERTH_BIN" --root "$TMP/berth")
P=(podman --root "$TMP/podman" --runroot "$TMP/pr")
cleanup() {
    rm_containers "${B[@]}"
    "${P[@]}" rm -af -t 0 >/dev/null 2>&1 || true
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    remove_tmp
}
trap cleanup EXIT

start_registry "$TMP"
push_fixture busybox library/busybox
BB="127.0.0.1:$PORT/library/busybox:latest"

# Both stores get the same image, tagged `busybox`.
"${B[@]}" pull -q "$BB" >/dev/null && "${B[@]}" tag "$BB" busybox:latest
"${P[@]}" pull -q --tls-verify=false "$BB" >/dev/null && "${P[@]}" tag "$BB" docker.io/library/busybox:latest

"${B[@]}" daemon --host "unix://$TMP/berth.sock" >"$TMP/berth.log" 2>&1 &
PIDS+=($!)
"${P[@]}" system service --time=0 "unix://$TMP/podman.sock" >"$TMP/podman.log" 2>&1 &
PIDS+=($!)
for s in berth podman; do
    for _ in $(seq 200); do curl -fs --unix-socket "$TMP/$s.sock" http://x/_ping >/dev/null 2>&1 && break; sleep 0.05; done
    curl -fs --unix-socket "$TMP/$s.sock" http://x/_ping >/dev/null || { say "$s API did not come up: $(tail -5 "$TMP/$s.log")"; exit 1; }
done
export DOCKER_CONFIG="$TMP/docker-config"
mkdir -p "$DOCKER_CONFIG"

timed() {
    local name=$1 host=$2 s e; shift 2
    s=$(now); DOCKER_HOST="$host" "$DOCKER" "$@" >/dev/null 2>"$TMP/err" || { say "$name failed: $(cat "$TMP/err")"; exit 1; }; e=$(now)
    record "$name" "$e" "$s"
}
say "1/2: docker run --rm busybox true ($ROUNDS interleaved rounds)"
# One warm-up each (first container start on a fresh store).
DOCKER_HOST="unix://$TMP/berth.sock" "$DOCKER" run --rm busybox true
DOCKER_HOST="unix://$TMP/podman.sock" "$DOCKER" run --rm busybox true
for _ in $(seq "$ROUNDS"); do
    timed berth_run "unix://$TMP/berth.sock" run --rm busybox true
    timed podman_run "unix://$TMP/podman.sock" run --rm busybox true
done

say "2/2: GET /containers/json?all=1 with 200 containers"
python3 - "$TMP" <<'PY'
import http.client, json, os, socket, statistics, sys, time
tmp = sys.argv[1]

class UnixConn(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self.path)

def call(conn, method, url, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, url, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"bench-api: {method} {url} -> {r.status} {data[:200]!r}")
    return data

for name in ("berth", "podman"):
    conn = UnixConn(os.path.join(tmp, name + ".sock"))
    for i in range(200):
        call(conn, "POST", f"/v1.41/containers/create?name=bench{i}", {"Image": "busybox", "Cmd": ["true"]})
    n = len(json.loads(call(conn, "GET", "/v1.41/containers/json?all=1")))
    if n < 200:
        sys.exit(f"bench-api: {name} lists {n} containers, wanted 200")
    times = []
    for _ in range(60):
        s = time.perf_counter()
        call(conn, "GET", "/v1.41/containers/json?all=1")
        times.append(time.perf_counter() - s)
    with open(os.path.join(tmp, f"{name}_list.times"), "w") as f:
        f.write("\n".join(f"{t:.6f}" for t in times[10:]) + "\n")
PY

python3 - "$TMP" "$ROUNDS" <<'PY'
import statistics, sys
tmp, rounds = sys.argv[1], sys.argv[2]
def med(name):
    return statistics.median(float(x) for x in open(f"{tmp}/{name}.times"))
b, p = med("berth_run"), med("podman_run")
bl, pl = med("berth_list"), med("podman_list")
print(f"docker run --rm busybox true (median of {rounds})   berth API {b:.3f}s  podman API {p:.3f}s  berth/podman {b/p:.2f}x (target <= 0.3)")
print(f"GET /containers/json?all=1, 200 containers (median of 50)  berth {bl*1000:.2f} ms (target < 5)  podman {pl*1000:.2f} ms")
PY
