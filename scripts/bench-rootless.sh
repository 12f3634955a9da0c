#!/usr/bin/env bash
# Rootless benchmark (issue 14): Berth's rootless engine side by side with rootless podman,
# both run by the same ordinary user (made here, idempotently, with subordinate ids) in a
# clean environment, on the same fixtures from one local registry:
#   1. `run --rm busybox true`: berth vs `podman --root DIR --runroot DIR run --rm`
#      (interleaved rounds; each tool's namespace holder — berth's keeper, podman's pause
#      process — is already running, as it is for a user's second command); the same with
#      --network none beside it, without a target
#   2. a cold pull of each of PULL_IMAGES (default: busybox, and the multi-layer python
#      fixture that scripts/bench-pull.sh pulls, 66 MB compressed) into a fresh store for each tool
#      every round, the order alternating
# Medians and ratios, beside the issue's targets (run <= 0.2x podman, pull >= 2x faster).
# Run as root (it makes the user); the user is BENCH_USER (default berth-bench).
#
#   BERTH_BIN=target/release/berth ROUNDS=10 bash scripts/bench-rootless.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH=bench-rootless
. "$ROOT/scripts/bench-lib.sh"
ROUNDS="${ROUNDS:-10}"
PULL_ROUNDS="${PULL_ROUNDS:-$ROUNDS}"
PULL_IMAGES="${PULL_IMAGES:-busybox python}"
BUSER="${BENCH_USER:-berth-bench}"

[ "$(id -u)" = 0 ] || { say "run this as root: it makes the ordinary user $BUSER and runs both tools as it"; exit 1; }
need docker-registry skopeo podman python3 curl setpriv useradd usermod newuidmap newgidmap pasta
FIXTURES_BIG=1 bash "$ROOT/tests/fixtures/make-fixtures.sh" "$FIXTURES" >/dev/null

# --- the user: useradd -m unless it exists, 65536 subordinate uids and gids unless it has
# some (as tests/src/rootless.rs User::ensure does) ---
id -u "$BUSER" >/dev/null 2>&1 || useradd -m -s /bin/sh "$BUSER"
BUID="$(id -u "$BUSER")"
BGID="$(id -g "$BUSER")"
BHOME="$(getent passwd "$BUSER" | cut -d: -f6)"
has_subids() { awk -F: -v n="$BUSER" -v u="$BUID" 'NF == 3 && ($1 == n || $1 == u) && $3 != 0 { f = 1 } END { exit !f }' "$1"; }
if ! has_subids /etc/subuid || ! has_subids /etc/subgid; then
    start="$(awk -F: 'NF == 3 && $2 + $3 > m { m = $2 + $3 } END { print (m > 300000 ? m : 300000) }' /etc/subuid /etc/subgid)"
    usermod --add-subuids "$start-$((start + 65535))" --add-subgids "$start-$((start + 65535))" "$BUSER"
fi
# Rootless podman without a systemd user session: cgroupfs and a file for events (the
# machine's /etc/containers/containers.conf, from install.sh, already picks runc).
mkdir -p "$BHOME/.config/containers"
printf '%s\n' '[engine]' 'cgroup_manager = "cgroupfs"' 'events_logger = "file"' >"$BHOME/.config/containers/containers.conf"
chown -R "$BUID:$BGID" "$BHOME/.config"
# Without a storage.conf rootless podman 4.3 falls back to vfs here (a full copy per layer);
# the kernel's own overlay works in the user namespace, so podman gets that.
PODMAN=(podman --storage-driver overlay)

# --- scratch: TMP is root's (registry), TMP/u the user's (0700): its XDG_RUNTIME_DIR, the
# tools' stores. Short: podman refuses a runroot path over 50 characters. ---
TMP="$(mktemp -d /tmp/bl.XXXXXX)"
chmod 755 "$TMP"
U="$TMP/u"
RUN="$U/run"
mkdir -p "$U" "$RUN"
chown "$BUID:$BGID" "$U" "$RUN"
chmod 700 "$U" "$RUN"
AS=(setpriv --reuid="$BUID" --regid="$BGID" --init-groups env -i HOME="$BHOME" USER="$BUSER" LOGNAME="$BUSER"
    PATH=/usr/local/bin:/usr/bin:/bin:/usr/games XDG_RUNTIME_DIR="$RUN")
# user_dir DIR: makes DIR, the user's.
user_dir() { mkdir -p "$1"; chown "$BUID:$BGID" "$1"; }
# The pulls land on a fresh ext4 filesystem of their own, as in bench-pull.sh; mounted
# before either tool starts its namespace holder, whose mount namespace is a copy of ours
# ("/" is not a shared mount here, so a later mount would not reach it).
user_dir "$U/pulls"
if command -v mkfs.ext4 >/dev/null && [ "${BENCH_LOOPFS:-1}" = 1 ]; then
    truncate -s 16G "$TMP/pulls.img"
    mkfs.ext4 -q -F "$TMP/pulls.img"
    mount -o loop "$TMP/pulls.img" "$U/pulls"
    chown "$BUID:$BGID" "$U/pulls"
    say "pulling into a fresh ext4 filesystem at $U/pulls"
fi

pid_in() { [ -f "$1" ] && cat "$1" 2>/dev/null || true; }
cleanup() {
    cd /
    rm_containers "${AS[@]}" "$BERTH_BIN" --root "$U/berth"
    "${AS[@]}" "${PODMAN[@]}" --root "$U/podman" --runroot "$U/pr" rm -af -t 0 >/dev/null 2>&1 || true
    # The namespace holders, by the pids they wrote: berth's keeper and its pasta, podman's
    # pause process (the user's processes go with their namespaces).
    local pids=() p
    for p in "$(pid_in "$RUN/berth/rootless/keeper.pid")" "$(pid_in "$RUN/berth/rootless/network.pid")" \
        "$(pid_in "$RUN/libpod/tmp/pause.pid")"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null && pids+=("$p")
    done
    for _ in $(seq 50); do
        local alive=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    local left
    left="$(ps -o pid=,args= -u "$BUID" || true)"
    [ -z "$left" ] || say "left running as $BUSER (not ours to end by name): $left"
    remove_tmp
}
trap cleanup EXIT

# The user must reach the binary; a build in root's home is copied where it can.
if ! "${AS[@]}" test -x "$BERTH_BIN"; then
    cp "$BERTH_BIN" "$TMP/berth"
    chmod 755 "$TMP/berth"
    BERTH_BIN="$TMP/berth"
fi
cd "$U"

start_registry "$TMP"
for img in $PULL_IMAGES busybox; do
    push_fixture "$img" "bench/$img"
done
ref() { echo "127.0.0.1:$PORT/bench/$1:latest"; }
BB="$(ref busybox)"
B=("${AS[@]}" "$BERTH_BIN" --root "$U/berth")
P=("${AS[@]}" "${PODMAN[@]}" --root "$U/podman" --runroot "$U/pr")
say "user $BUSER (uid $BUID), berth $BERTH_BIN, podman $(podman --version | awk '{print $3}'), registry 127.0.0.1:$PORT"
timed berth_first_pull "${B[@]}" pull -q "$BB"
timed podman_first_pull "${P[@]}" pull -q --tls-verify=false "$BB"
timed berth_warm "${B[@]}" run --rm "$BB" true
timed podman_warm "${P[@]}" run --rm "$BB" true

say "1/2: run --rm busybox true ($ROUNDS rounds)"
for _ in $(seq "$ROUNDS"); do
    timed berth_true "${B[@]}" run --rm "$BB" true
    timed podman_true "${P[@]}" run --rm "$BB" true
    # the same without a network (no target; shows what the default network costs each)
    timed berth_none "${B[@]}" run --rm --network none "$BB" true
    timed podman_none "${P[@]}" run --rm --network none "$BB" true
done

say "2/2: cold pull of $PULL_IMAGES, a fresh store each ($PULL_ROUNDS rounds)"
# As in bench-pull.sh: no store is deleted until the end (deleting one tool's files slows
# whichever tool writes next), dirty pages are flushed before each timed pull, and the
# order alternates each round.
for round in $(seq "$PULL_ROUNDS"); do
    for img in $PULL_IMAGES; do
        order=(berth podman)
        [ $((round % 2)) = 0 ] && order=(podman berth)
        for tool in "${order[@]}"; do
            d="$U/pulls/$tool-$img-$round"
            user_dir "$d"
            sync
            if [ "$tool" = berth ]; then
                timed "berth_pull_$img" "${AS[@]}" "$BERTH_BIN" --root "$d/root" pull -q "$(ref "$img")"
            else
                timed "podman_pull_$img" "${AS[@]}" "${PODMAN[@]}" --root "$d/root" --runroot "$d/rr" pull -q --tls-verify=false "$(ref "$img")"
            fi
        done
    done
done

python3 - "$TMP" "$PULL_IMAGES" <<'PY'
import statistics, sys, os
tmp, images = sys.argv[1], sys.argv[2].split()
def times(name):
    return [float(x) for x in open(os.path.join(tmp, name + ".times")).read().split()]
def med(name):
    return statistics.median(times(name))
def target(ok):
    return "met" if ok else "NOT met"
print(f"first command (namespace holder starts; busybox pull)  berth {med('berth_first_pull'):.3f}s  podman {med('podman_first_pull'):.3f}s")
b, p = med("berth_true"), med("podman_true")
print(f"run --rm true   berth {b:.3f}s  podman {p:.3f}s  berth/podman {b/p:.2f}x (target <= 0.2: {target(b/p <= 0.2)})")
print(f"  berth: {' '.join(f'{t:.3f}' for t in times('berth_true'))}")
print(f"  podman: {' '.join(f'{t:.3f}' for t in times('podman_true'))}")
b, p = med("berth_none"), med("podman_none")
print(f"  --network none: berth {b:.3f}s  podman {p:.3f}s  berth/podman {b/p:.2f}x (no target)")
for img in images:
    b, p = med(f"berth_pull_{img}"), med(f"podman_pull_{img}")
    print(f"cold pull {img:8s} berth {b:.3f}s  podman {p:.3f}s  berth/podman {b/p:.2f}x = {p/b:.2f}x faster (target <= 0.5: {target(b/p <= 0.5)})")
    print(f"  berth: {' '.join(f'{t:.3f}' for t in times(f'berth_pull_{img}'))}")
    print(f"  podman: {' '.join(f'{t:.3f}' for t in times(f'podman_pull_{img}'))}")
PY
