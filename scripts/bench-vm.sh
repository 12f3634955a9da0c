#!/usr/bin/env bash
# Machines (issue 13), side by side in one run, medians and ratios:
#   1. cold `berth machine start` to API ready, against the floor: the same kernel, QEMU
#      flags and relay with the payload's floor.img, whose init only says it is ready
#      (target <= 1.3x the floor);
#   2. `run --rm busybox true` through the machine's socket, against native Berth;
#   3. idle cost after 60 s with no containers: host PSS and CPU of QEMU + relay.
# Under TCG here (KVM does not run guests on this machine): the figures are TCG figures.
#   ROUNDS=5 bash scripts/bench-vm.sh      (BERTH_BIN: a release build by default)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH=bench-vm
. "$ROOT/scripts/bench-lib.sh"
ROUNDS="${ROUNDS:-5}"
IDLE="${IDLE:-60}"

need qemu-system-x86_64 docker-registry skopeo python3 curl docker
GUEST="$(BERTH_BIN="$BERTH_BIN" bash "$ROOT/scripts/build-guest.sh" | tail -1)"
FIXTURES_BIG=0 bash "$ROOT/tests/fixtures/make-fixtures.sh" "$FIXTURES" >/dev/null

TMP="$(mktemp -d /tmp/bvm.XXXXXX)"
export BERTH_MACHINE_DIR="$TMP/machines" DOCKER_CONFIG="$TMP/docker" BERTH_GUEST="$GUEST"
export BERTH_MACHINE_ACCEL="${BERTH_MACHINE_ACCEL:-tcg}"
N=("$BERTH_BIN" --root "$TMP/native")
cleanup() {
    "$BERTH_BIN" machine rm -f full >/dev/null 2>&1 || true
    "$BERTH_BIN" machine rm -f floor >/dev/null 2>&1 || true
    rm_containers "${N[@]}"
    remove_tmp
}
trap cleanup EXIT

"$BERTH_BIN" machine init full --cpus 2 --memory 1024 --disk-size 4 >/dev/null
"$BERTH_BIN" machine init floor --cpus 2 --memory 1024 --disk-size 4 >/dev/null
# The first boot formats the data disk: not counted.
"$BERTH_BIN" machine start full >/dev/null 2>&1
"$BERTH_BIN" machine stop full >/dev/null

say "1/3: machine start to API ready, against the floor ($ROUNDS rounds, $BERTH_MACHINE_ACCEL)"
for i in $(seq "$ROUNDS"); do
    timed floor_start env BERTH_MACHINE_INITRD=floor.img "$BERTH_BIN" machine start floor
    "$BERTH_BIN" machine stop floor >/dev/null
    timed full_start "$BERTH_BIN" machine start full
    "$BERTH_BIN" machine stop full >/dev/null
done

say "2/3: run --rm busybox true through the machine and natively ($ROUNDS rounds)"
start_registry "$TMP"
push_fixture busybox bench/busybox
BB="127.0.0.1:$PORT/bench/busybox:latest"
"$BERTH_BIN" machine start full >/dev/null 2>&1
SOCK="$BERTH_MACHINE_DIR/full/api.sock"
D=(env DOCKER_HOST="unix://$SOCK" docker)
"${D[@]}" pull -q "$BB" >/dev/null
"${N[@]}" pull -q "$BB" >/dev/null
for i in $(seq "$ROUNDS"); do
    timed vm_true "${D[@]}" run --rm "$BB" true
    timed native_true "${N[@]}" run --rm "$BB" true
done

say "3/3: idle for $IDLE s with no containers"
qemu=$(cat "$BERTH_MACHINE_DIR/full/qemu.pid")
relay=$(cat "$BERTH_MACHINE_DIR/full/relay.pid")
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
c0=$(( $(cpu "$qemu") + $(cpu "$relay") ))
sleep "$IDLE"
c1=$(( $(cpu "$qemu") + $(cpu "$relay") ))
ticks=$(getconf CLK_TCK)
pss_kb=$(( $(pss "$qemu") + $(pss "$relay") ))

python3 - "$TMP" "$ROUNDS" "$c0" "$c1" "$ticks" "$IDLE" "$pss_kb" "$BERTH_MACHINE_ACCEL" <<'PY'
import statistics, sys
tmp, rounds, c0, c1, ticks, idle, pss, accel = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8]), sys.argv[8]
def med(n):
    with open(f"{tmp}/{n}.times") as f:
        return statistics.median(float(l) for l in f if l.strip())
floor, full = med("floor_start"), med("full_start")
vm, native = med("vm_true"), med("native_true")
print(f"machine start ({accel})  full {full:.2f}s  floor {floor:.2f}s  full/floor {full/floor:.2f}x (target <= 1.3)")
print(f"run --rm true      machine {vm:.3f}s  native {native:.3f}s  machine/native {vm/native:.1f}x")
print(f"idle {idle} s           CPU {100 * (c1 - c0) / ticks / idle:.1f}% of a core (QEMU + relay)   PSS {pss / 1024:.0f} MiB")
PY
