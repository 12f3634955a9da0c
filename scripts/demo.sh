#!/usr/bin/env bash
# The README's first command: installs what is missing, builds berth, and shows the main
# job. Until the desktop app exists that is a short demo on the embedded engine: start a
# local registry (Docker Hub is out of reach here), put an image made by third-party tools
# in it, and pull, list, tag and push it with berth.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/install.sh
echo "==> building berth (release)"
cargo build --release -p berth --quiet
target=${CARGO_TARGET_DIR:-$repo/target}
berth="$target/release/berth"

fixtures=${BERTH_FIXTURES:-$repo/tests/fixtures/out}
echo "==> making the demo image with buildah/skopeo (cached in $fixtures)"
bash tests/fixtures/make-fixtures.sh "$fixtures" >/dev/null

work=$(mktemp -d)
registry_pid=""
cleanup() {
  # Containers first: their overlay mounts live under the demo's store.
  ids=$(BERTH_ROOT="$work/root" "$berth" ps -aq 2>/dev/null || true)
  [ -n "$ids" ] && BERTH_ROOT="$work/root" "$berth" rm -f $ids >/dev/null 2>&1 || true
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log: { level: error }
storage: { filesystem: { rootdirectory: $work/registry }, delete: { enabled: true } }
http: { addr: 127.0.0.1:$port }
YML
echo "==> starting a local registry on 127.0.0.1:$port"
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
skopeo copy --quiet --dest-tls-verify=false "oci:$fixtures/busybox:latest" "docker://127.0.0.1:$port/demo/busybox:latest"

export BERTH_ROOT="$work/root"
set -x
"$berth" pull "127.0.0.1:$port/demo/busybox"
"$berth" images
"$berth" tag "127.0.0.1:$port/demo/busybox" "127.0.0.1:$port/demo/copy:v1"
"$berth" push "127.0.0.1:$port/demo/copy:v1"
"$berth" history "127.0.0.1:$port/demo/copy:v1"
"$berth" system df
web_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$berth" run -d --name web -p "$web_port:80" "127.0.0.1:$port/demo/busybox" httpd -f -p 80 -h /etc
"$berth" ps
{ set +x; } 2>/dev/null
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$web_port/hostname" && break; sleep 0.1; done
set -x
"$berth" rm -f web
{ set +x; } 2>/dev/null
echo "==> demo done: berth pulled, listed, tagged, pushed and ran an image with no Docker installed."
# The main job: the desktop app on the embedded engine (under Xvfb on a headless machine).
unset BERTH_ROOT
bash "$repo/scripts/desktop.sh"
