#!/usr/bin/env bash
# The README's first command: installs what Berth needs (scripts/install.sh app), builds berth
# and Berth Desktop, shows the lecture's steps with the CLI on a store of its own, then opens
# Berth Desktop on its embedded engine over that store.
#
# Docker Hub is out of reach on this kind of machine, so the demo makes its own image:
# `berth build` puts Debian's static busybox into a FROM-scratch image, pushes it to a
# local registry (Debian's docker-registry), removes it, pulls it back and runs it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

bash scripts/install.sh app
echo "==> building berth (release)"
cargo build --release -p berth --quiet
target=${CARGO_TARGET_DIR:-$repo/target}
berth="$target/release/berth"

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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

port=$(free_port)
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

ctx="$work/web"
mkdir -p "$ctx"
cp /bin/busybox "$ctx/busybox"
echo '<h1>Hello from a Berth container</h1>' >"$ctx/index.html"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
WORKDIR /www
COPY index.html .
EXPOSE 80
CMD ["httpd", "-f", "-v", "-p", "80", "-h", "/www"]
DOCKERFILE

export BERTH_ROOT="$work/root"
image="127.0.0.1:$port/demo/web:v1"
web_port=$(free_port)
set -x
"$berth" build -t demo-web "$ctx"
"$berth" tag demo-web "$image"
"$berth" push "$image"
"$berth" rmi demo-web "$image"
"$berth" pull "$image"
"$berth" images
"$berth" run -d --name web -p "$web_port:80" "$image"
"$berth" ps
{ set +x; } 2>/dev/null
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$web_port/" && break; sleep 0.1; done
set -x
"$berth" logs web
"$berth" system df
{ set +x; } 2>/dev/null
echo "==> demo done: berth built, pushed, pulled and ran an image with no Docker installed."
echo "    The container 'web' keeps running for the window (http://localhost:$web_port)."
# The main job: the desktop app on the embedded engine, over the demo's store.
bash "$repo/scripts/desktop.sh"
