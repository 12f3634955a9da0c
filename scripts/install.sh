#!/usr/bin/env bash
# The one installer for Berth, in two groups:
#
#   bash scripts/install.sh [app]   what running Berth Desktop and the berth CLI needs, plus
#                                   what building them from source needs (the README's first command)
#   bash scripts/install.sh tests   the app group plus the peers and tools that the tests and
#                                   benchmarks use (the README's second command, .ci/run)
#
# Idempotent. When a package is missing it refreshes the package lists first (lists that
# are present may still be older than the mirror, and installing from them fails), then
# installs what is missing. When nothing is missing it makes no apt call at all.
# The mirror is whatever the machine's apt sources name; nothing here names a host.
set -euo pipefail

group=${1:-app}
case "$group" in
    app | tests) ;;
    -h | --help)
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        printf 'install.sh: unknown group "%s": use "app" (run Berth) or "tests" (run its tests)\n' "$group" >&2
        exit 2
        ;;
esac

step() { printf 'install.sh: %s\n' "$*"; }
fail() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

# One line per reason: "package … # why". Lines are read by packages_of below.
APP_GROUP='
nftables iproute2 ca-certificates                      # the engine: networks and published ports; TLS to registries
uidmap passt                                           # the engine run by an ordinary user: subordinate ids (newuidmap), outbound network (pasta)
tini                                                   # --init: a static tini as PID 1 of a container
libwebkit2gtk-4.1-dev libayatana-appindicator3-dev     # the window (WebKitGTK) and its tray, with headers to build them
librsvg2-dev libxdo-dev libssl-dev                     # the rest of what Tauri links against
build-essential pkg-config                             # compiling berth and berth-desktop from source
xdg-utils                                              # "open in browser" (the opener calls xdg-open)
xvfb xauth imagemagick                                 # a window without a display: Xvfb runs it, import saves its picture
curl python3 busybox-static docker-registry            # the demo: a busybox image built by berth, a local registry to push it to
'
TESTS_GROUP='
buildah skopeo umoci debootstrap                       # test images are made by tools independent of Berth
podman runc docker.io fuse-overlayfs uidmap            # the peers Berth is compared with, side by side
slirp4netns                                            # the other outbound helper of a rootless engine (after pasta)
apache2-utils openssl                                  # the test registry: htpasswd logins, TLS certificates
hyperfine                                              # the benchmarks
python3-venv                                           # a venv for the Docker SDK for Python (PyPI), a real API client
docker-compose                                         # docker-compose 1.29.2 from Debian, a real Compose client of the Engine API
xz-utils zstd bzip2 gzip tar bsdutils                  # layer compressions; script(1) for the tty tests
webkit2gtk-driver                                      # WebKitWebDriver: the e2e drives the real window
dbus-daemon dbus-bin dunst haskell-status-notifier-item-utils # a real session bus, notification server and tray watcher
qemu-system-x86 kmod cpio                              # the VM guest: scripts/build-guest.sh (depmod, cpio), booted under QEMU
libseccomp-dev libcap-ng-dev                           # building virtiofsd (crates.io; not in Debian 12) for virtiofs shares of machines
'
# Commands that must be on PATH afterwards, per group.
APP_COMMANDS='nft ip newuidmap newgidmap pasta tini-static xdg-open Xvfb import curl python3 busybox docker-registry cc pkg-config'
TESTS_COMMANDS='buildah skopeo umoci debootstrap podman runc dockerd fuse-overlayfs newuidmap slirp4netns
htpasswd openssl hyperfine xz zstd script WebKitWebDriver dbus-daemon dunst status-notifier-watcher
qemu-system-x86_64 depmod cpio docker-compose'

packages_of() { printf '%s\n' "$1" | sed 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d'; }

mapfile -t PACKAGES < <(packages_of "$APP_GROUP")
COMMANDS=$APP_COMMANDS
if [ "$group" = tests ]; then
    mapfile -t -O "${#PACKAGES[@]}" PACKAGES < <(packages_of "$TESTS_GROUP")
    COMMANDS="$COMMANDS $TESTS_COMMANDS"
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and sudo is missing: run this as root, or install sudo"
    SUDO=(sudo)
fi

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if [ "${#missing[@]}" -eq 0 ]; then
    step "$group group: all ${#PACKAGES[@]} packages already installed"
else
    step "$group group: missing ${missing[*]}"
    step "apt-get update (package lists can be older than the mirror even when present)"
    "${SUDO[@]}" apt-get update -qq ||
        fail "could not refresh the package lists (apt-get update failed): check the network and /etc/apt/sources.list*, then run this again"
    step "apt-get install ${missing[*]}"
    # dpkg's progress goes to a log; apt's explanation of a failure is shown from it.
    apt_log=$(mktemp "${TMPDIR:-/tmp}/berth-install.XXXXXX")
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$apt_log"; then
        tail -n 30 "$apt_log" >&2
        fail "apt-get install failed (its message is above; all of it is in $apt_log): fix what it names, then run this again"
    fi
    rm -f "$apt_log"
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Node 20+ builds the UI (ui/, from the committed package-lock.json).
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 ||
    fail "node and npm are missing: install Node.js 20 or newer (nodejs.org or your distribution), then run this again"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] ||
    fail "Node.js $(node --version) is too old for the UI build (Vite needs 20 or newer): install Node.js 20, then run this again"
if [ ! -f "$REPO/ui/node_modules/.package-lock.json" ] ||
    [ "$REPO/ui/package-lock.json" -nt "$REPO/ui/node_modules/.package-lock.json" ]; then
    step "npm ci in ui/"
    (cd "$REPO/ui" && npm ci --no-audit --no-fund --loglevel=error)
else
    step "ui/node_modules up to date"
fi

if [ "$group" = tests ]; then
    cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
    # tool@version: what the tests and the machine use, built from crates.io.
    for spec in tauri-driver cargo-nextest virtiofsd@1.14.0; do
        tool=${spec%@*}
        if command -v "$tool" >/dev/null 2>&1 || [ -x "$cargo_bin/$tool" ]; then
            step "$tool present"
        elif [ "$spec" = "$tool" ]; then
            step "cargo install $tool --locked (into $cargo_bin)"
            cargo install "$tool" --locked --quiet
        else
            step "cargo install $tool --version ${spec#*@} --locked (into $cargo_bin)"
            cargo install "$tool" --version "${spec#*@}" --locked --quiet
        fi
    done

    # The Docker SDK for Python, from PyPI, in a venv of its own (tests/.venv, not in git).
    venv="$REPO/tests/.venv"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import docker' 2>/dev/null; then
        step "Docker SDK for Python present ($venv)"
    else
        step "pip install docker==7.2.0 into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check docker==7.2.0 ||
            fail "could not install the Docker SDK for Python from PyPI (pip's message is above): check the network, then run this again"
    fi

    # podman: runc instead of crun (crun fails on this machine's hybrid cgroup layout) and
    # generous default ulimits.
    CONF=${BERTH_CONTAINERS_CONF:-/etc/containers/containers.conf}
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
        "${SUDO[@]}" mkdir -p "$(dirname "$CONF")"
        printf '%s\n' \
            '[containers]' \
            'default_ulimits = ["nofile=20000:20000","nproc=4096:4096"]' \
            '' \
            '[engine]' \
            'runtime = "runc"' | "${SUDO[@]}" tee "$CONF" >/dev/null
    fi

    # docker.io (Debian's dockerd 20.10, the API conformance reference) also ships a client
    # in /usr/bin; the docker CLI v28 in /usr/local/bin must stay first on PATH.
    if [ -x /usr/local/bin/docker ] && ! /usr/local/bin/docker --version | grep -q 'version 2[89]\.'; then
        step "WARNING: /usr/local/bin/docker is not the v28 client the API tests expect" >&2
    fi
fi

# Every command the group promises is on PATH now.
for bin in $COMMANDS; do
    PATH="$PATH:/usr/sbin:/sbin" command -v "$bin" >/dev/null 2>&1 ||
        fail "$bin is still missing after the install: run 'bash scripts/install.sh $group' again and read apt's messages"
done
step "ok: the $group group is installed"
