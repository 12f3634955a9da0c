#!/usr/bin/env bash
# Idempotent installer for the tools the Berth test-suite and benchmarks need.
# Safe to run repeatedly: it only calls apt-get when something is missing.
set -euo pipefail

PACKAGES=(
    docker-registry skopeo buildah umoci podman busybox-static debootstrap runc
    apache2-utils uidmap fuse-overlayfs python3 openssl hyperfine xz-utils zstd
    tar gzip ca-certificates curl nftables iproute2 bsdutils bzip2
    # desktop app (src-tauri/ + ui/): WebKitGTK, tray, icons; its end-to-end test
    # drives the real window under Xvfb through WebKitWebDriver; imagemagick saves screenshots;
    # xdg-utils: the opener plugin calls xdg-open, which honours $BROWSER
    libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
    build-essential pkg-config xvfb xauth webkit2gtk-driver imagemagick xdg-utils
    # notifications: the test shows one through a real session bus and notification server
    dbus-daemon dunst
    # the tray test reads the tray's menu through a real StatusNotifier watcher
    dbus-bin haskell-status-notifier-item-utils
    docker.io
)

step() { printf 'install.sh: %s\n' "$*"; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        step "not root and no sudo available; cannot install packages" >&2
        exit 1
    fi
fi

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! is_installed "$pkg"; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    step "all ${#PACKAGES[@]} packages already installed"
else
    step "missing packages: ${missing[*]}"
    # Only refresh the package lists when they are absent or a package
    # cannot be found in the current lists.
    need_update=0
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        need_update=1
    else
        for pkg in "${missing[@]}"; do
            if ! apt-cache show "$pkg" >/dev/null 2>&1; then
                need_update=1
                break
            fi
        done
    fi
    if [ "$need_update" -eq 1 ]; then
        step "apt-get update (package lists missing or stale)"
        "${SUDO[@]}" apt-get update -qq
    else
        step "apt package lists present; skipping apt-get update"
    fi
    step "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# podman: runc instead of crun (crun fails on this machine's hybrid cgroup
# layout) and generous default ulimits.
CONF=/etc/containers/containers.conf
conf_ok() {
    [ -f "$CONF" ] || return 1
    grep -Eq '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$CONF" || return 1
    grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=.*nofile=20000:20000' "$CONF" || return 1
    grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=.*nproc=4096:4096' "$CONF" || return 1
}
if conf_ok; then
    step "$CONF already configured (runc, ulimits)"
else
    if [ -f "$CONF" ]; then
        step "backing up $CONF to $CONF.berth-bak and rewriting it"
        "${SUDO[@]}" cp -f "$CONF" "$CONF.berth-bak"
    else
        step "writing $CONF (runc, ulimits)"
    fi
    "${SUDO[@]}" mkdir -p /etc/containers
    printf '%s\n' \
        '[containers]' \
        'default_ulimits = ["nofile=20000:20000","nproc=4096:4096"]' \
        '' \
        '[engine]' \
        'runtime = "runc"' | "${SUDO[@]}" tee "$CONF" >/dev/null
fi

# Sanity: every tool the harness shells out to is now on PATH.
for bin in docker-registry skopeo buildah umoci podman busybox debootstrap runc \
    htpasswd newuidmap fuse-overlayfs python3 openssl hyperfine xz zstd; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$bin" >/dev/null 2>&1; then
        step "ERROR: $bin still missing after install" >&2
        exit 1
    fi
done
# Desktop app: Node 20+ for the UI build (ui/, from the committed package-lock.json) and
# tauri-driver for its end-to-end test (WebKitWebDriver comes from webkit2gtk-driver).
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    step "ERROR: node and npm are missing: install Node.js 20 or newer (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    step "ERROR: Node.js $(node --version) is too old for the UI build (Vite needs 20 or newer)" >&2
    exit 1
fi
if [ ! -f "$REPO/ui/node_modules/.package-lock.json" ] \
    || [ "$REPO/ui/package-lock.json" -nt "$REPO/ui/node_modules/.package-lock.json" ]; then
    step "npm ci in ui/"
    (cd "$REPO/ui" && npm ci --no-audit --no-fund --loglevel=error)
else
    step "ui/node_modules up to date"
fi
if command -v tauri-driver >/dev/null 2>&1 || [ -x "${CARGO_HOME:-$HOME/.cargo}/bin/tauri-driver" ]; then
    step "tauri-driver present"
else
    step "cargo install tauri-driver --locked (into ${CARGO_HOME:-$HOME/.cargo}/bin)"
    cargo install tauri-driver --locked --quiet
fi
# docker.io (Debian's dockerd 20.10, the API conformance reference) also ships a client in
# /usr/bin; the docker CLI v28 in /usr/local/bin must stay first on PATH.
if [ -x /usr/local/bin/docker ] && ! /usr/local/bin/docker --version | grep -q 'version 2[89]\.'; then
    step "WARNING: /usr/local/bin/docker is not the v28 client the API tests expect" >&2
fi
step "ok: all tools present"
