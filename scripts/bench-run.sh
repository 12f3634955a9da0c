#!/usr/bin/env bash
# Container start-up benchmark (issue 4): Berth side by side with podman and a raw runc.
#   1. `run --rm busybox true`: berth vs `podman run --rm` vs `runc run` on a prepared bundle
#   2. 20 concurrent `run -d busybox sleep 60`: berth vs podman (wall time until all started)
#   3. `run -d -p PORT:5000 flask` until the first HTTP 200: berth vs podman vs Flask's own
#      start-up (python3 app.py chrooted into the same image's files, no container)
# Interleaved rounds, medians and ratios.
#
#   BERTH_BIN=target/release/berth ROUNDS=15 bash scripts/bench-run.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH=bench-run
. "$ROOT/scripts/bench-lib.sh"
ROUNDS="${ROUNDS:-15}"

need docker-registry skopeo podman runc umoci python3 curl
FIXTURES_BIG=1 bash "$ROOT/tests/fixtures/make-fixtures.sh" "$FIXTURES" >/dev/null

TMP="$(mktemp -d /tmp/br.XXXXXX)"
cleanup() {
    rm_containers "$BERTH_BIN" --root "$TMP/berth"
    podman --root "$TMP/podman" --runroot "$TMP/pr" rm -af >/dev/null 2>&1 || true
    remove_tmp
}
trap cleanup EXIT

start_registry "$TMP"
for img in busybox flask; do
    push_fixture "$img" "bench/$img"
done
BB="127.0.0.1:$PORT/bench/busybox:latest"
FL="127.0.0.1:$PORT/bench/flask:latest"
B=("$BERTH_BIN" --root "$TMP/berth")
P=(podman --root "$TMP/podman" --runroot "$TMP/pr")
"${B[@]}" pull -q "$BB" >/dev/null
"${B[@]}" pull -q "$FL" >/dev/null
"${P[@]}" pull -q --tls-verify=false "$BB" >/dev/null
"${P[@]}" pull -q --tls-verify=false "$FL" >/dev/null

# A runc bundle from the same busybox image (unpacked by umoci, an independent tool).
umoci unpack --image "$FIXTURES/busybox:latest" "$TMP/bundle" >/dev/null
python3 - "$TMP/bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["args"] = ["true"]
c["process"]["terminal"] = False
json.dump(c, open(p, "w"))
PY
# Flask's own start-up, without a container: the image's files, chrooted.
umoci unpack --image "$FIXTURES/flask:latest" "$TMP/flaskfs" >/dev/null

timed() { local name=$1 s e; shift; s=$(now); "$@" >/dev/null 2>&1 || { say "$name failed: $*"; exit 1; }; e=$(now); record "$name" "$e" "$s"; }
say "1/3: run --rm busybox true ($ROUNDS rounds)"
for i in $(seq "$ROUNDS"); do
    timed berth_true "${B[@]}" run --rm "$BB" true
    timed podman_true "${P[@]}" run --rm "$BB" true
    timed runc_true runc --root "$TMP/runc" run --bundle "$TMP/bundle" "bench$i"
done

say "2/3: 20 concurrent run -d (5 rounds)"
for i in $(seq 5); do
    # (wait for these pids only: a bare `wait` would also wait for the registry)
    s=$(now); pids=(); for j in $(seq 20); do "${B[@]}" run -d "$BB" sleep 60 >/dev/null & pids+=($!); done
    wait "${pids[@]}"; e=$(now); record berth_20 "$e" "$s"
    "${B[@]}" rm -f $("${B[@]}" ps -aq) >/dev/null
    s=$(now); pids=(); for j in $(seq 20); do "${P[@]}" run -d "$BB" sleep 60 >/dev/null & pids+=($!); done
    wait "${pids[@]}"; e=$(now); record podman_20 "$e" "$s"
    "${P[@]}" rm -af -t 0 >/dev/null 2>&1
done

FLASK_ROUNDS="${FLASK_ROUNDS:-11}"
say "3/3: run -d -p → first HTTP 200 for the Flask image ($FLASK_ROUNDS rounds)"
# One Python process launches each command and polls every 2 ms, so the timing has no
# per-try process start in it; the same poller times all three.
python3 - "$TMP" "$FL" "${B[*]}" "${P[*]}" "$FLASK_ROUNDS" <<'PY'
import os, socket, subprocess, sys, time
tmp, image, berth, podman = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def first_200(port, start, timeout=30):
    while time.monotonic() - start < timeout:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
                data = s.recv(64)
                if data.startswith(b"HTTP/1.") and b" 200 " in data:
                    return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.002)
    sys.exit(f"bench-run: no HTTP 200 on port {port}")

def record(name, secs):
    with open(os.path.join(tmp, name + ".times"), "a") as f:
        f.write(f"{secs:.4f}\n")

rootfs = os.path.join(tmp, "flaskfs", "rootfs")
for _ in range(int(sys.argv[5])):
    for name, tool in (("berth_flask", berth), ("podman_flask", podman)):
        port = free_port()
        start = time.monotonic()
        cid = subprocess.run(tool + ["run", "-d", "-p", f"{port}:5000", image], capture_output=True, text=True, check=True).stdout.strip()
        record(name, first_200(port, start))
        subprocess.run(tool + ["rm", "-f", cid], capture_output=True)
    port = free_port()
    start = time.monotonic()
    p = subprocess.Popen(["chroot", rootfs, "sh", "-c", f"cd /app && exec python3 -c \"import app; app.app.run(host='127.0.0.1', port={port})\""],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record("flask_native", first_200(port, start))
    p.kill()
    p.wait()
PY

python3 - "$TMP" <<'PY'
import statistics, sys, os
tmp = sys.argv[1]
def med(name):
    return statistics.median(float(x) for x in open(os.path.join(tmp, name + ".times")).read().split())
m = {n: med(n) for n in ["berth_true", "podman_true", "runc_true", "berth_20", "podman_20", "berth_flask", "podman_flask", "flask_native"]}
print(f"run --rm true    berth {m['berth_true']:.3f}s  podman {m['podman_true']:.3f}s  runc {m['runc_true']:.3f}s")
print(f"  berth/podman {m['berth_true']/m['podman_true']:.2f}x (target <= 0.2)   berth/runc {m['berth_true']/m['runc_true']:.2f}x (target <= 2)")
print(f"20 x run -d      berth {m['berth_20']:.3f}s  podman {m['podman_20']:.3f}s  berth/podman {m['berth_20']/m['podman_20']:.2f}x")
print(f"first HTTP 200   berth {m['berth_flask']:.3f}s  podman {m['podman_flask']:.3f}s  flask alone {m['flask_native']:.3f}s")
print(f"  berth/flask-alone {m['berth_flask']/m['flask_native']:.2f}x (target <= 1.2)   berth/podman {m['berth_flask']/m['podman_flask']:.2f}x")
PY
