#!/usr/bin/env bash
# Machines (issue 13), side by side in one run, medians and ratios:
#   1. cold `berth machine start` to API ready, against the floor: the same kernel, QEMU
#      flags and relay with the payload's floor.img, whose init only says it is ready
#      (target <= 1.3x the floor); and the first `run --rm` right after it, which waits
#      for what the guest sets up after ready (container modules, network, shares);
#   2. `run --rm busybox true` through the machine's socket, against native Berth;
#   3. bind mounts of a host folder, virtiofs (when virtiofsd is installed) and 9p (a second
#      machine with BERTH_VIRTIOFSD=), against native Berth on the same folder and against
#      the same files on the guest's own disk (a volume: the work's cost under the VM
#      without sharing): reading a 100 MB file, and find + stat over 10,000 files;
#   4. memory given back: QEMU's RSS before, at the peak of, and 20 s after a container
#      that fills 400 MB (virtio-balloon free-page reporting);
#   5. idle cost after 60 s with no containers: host PSS and CPU of QEMU + relay.
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
    "$BERTH_BIN" machine rm -f nine >/dev/null 2>&1 || true
    rm_containers "${N[@]}"
    remove_tmp
}
trap cleanup EXIT

"$BERTH_BIN" machine init full --cpus 2 --memory 1024 --disk-size 4 >/dev/null
"$BERTH_BIN" machine init floor --cpus 2 --memory 1024 --disk-size 4 >/dev/null
"$BERTH_BIN" machine init nine --cpus 2 --memory 1024 --disk-size 4 >/dev/null
start_registry "$TMP"
push_fixture busybox bench/busybox
BB="127.0.0.1:$PORT/bench/busybox:latest"
SOCK="$BERTH_MACHINE_DIR/full/api.sock"
D=(env DOCKER_HOST="unix://$SOCK" docker)
# The first boot formats the data disk and pulls the image: not counted.
"$BERTH_BIN" machine start full >/dev/null 2>&1
"${D[@]}" pull -q "$BB" >/dev/null
"$BERTH_BIN" machine stop full >/dev/null

say "1/5: machine start to API ready, against the floor; then the first run --rm ($ROUNDS rounds, $BERTH_MACHINE_ACCEL)"
for i in $(seq "$ROUNDS"); do
    timed floor_start env BERTH_MACHINE_INITRD=floor.img "$BERTH_BIN" machine start floor
    "$BERTH_BIN" machine stop floor >/dev/null
    timed full_start "$BERTH_BIN" machine start full
    # The guest loads what containers need while its API already answers: a run at once
    # waits for that, so this is start-to-first-container, counted from "ready".
    timed full_first "${D[@]}" run --rm "$BB" true
    "$BERTH_BIN" machine stop full >/dev/null
done

say "2/5: run --rm busybox true through the machine and natively ($ROUNDS rounds)"
"$BERTH_BIN" machine start full >/dev/null 2>&1
"${N[@]}" pull -q "$BB" >/dev/null
for i in $(seq "$ROUNDS"); do
    timed vm_true "${D[@]}" run --rm "$BB" true
    timed native_true "${N[@]}" run --rm "$BB" true
done

say "3/5: bind mounts of a host folder: 100 MB read, find + stat of 10,000 files ($ROUNDS rounds)"
SHARE="$TMP/share"
mkdir -p "$SHARE/tree"
head -c 100M /dev/urandom >"$SHARE/big"
python3 - "$SHARE/tree" <<'PY'
import os, sys
for d in range(100):
    os.makedirs(f"{sys.argv[1]}/d{d}", exist_ok=True)
    for f in range(100):
        with open(f"{sys.argv[1]}/d{d}/f{f}.txt", "w") as fh:
            fh.write("x" * 100)
PY
V="$SHARE:/data"
READ='cat /data/big >/dev/null'
STAT='find /data/tree -type f | xargs stat -c %s >/dev/null'
FS=$(grep -ao 'from the host ([a-z0-9]*)' "$BERTH_MACHINE_DIR/full/console.log" | head -1 | tr -d '()' | awk '{print $4}')
BERTH_VIRTIOFSD= "$BERTH_BIN" machine start nine >/dev/null 2>&1
NINE=(env DOCKER_HOST="unix://$BERTH_MACHINE_DIR/nine/api.sock" docker)
"${NINE[@]}" pull -q "$BB" >/dev/null
# The same files in a volume on the guest's own disk: what the work costs in the guest
# without any sharing (under TCG, most of the gap to native is the emulation itself).
"${D[@]}" volume create benchdata >/dev/null
"${D[@]}" run --rm -v benchdata:/data -v "$SHARE":/src "$BB" cp -a /src/big /src/tree /data/
for i in $(seq "$ROUNDS"); do
    cat "$SHARE/big" >/dev/null   # all read from the host's page cache
    for side in vm nine native guest; do
        case $side in
            vm) R=("${D[@]}") M="$V" ;;
            nine) R=("${NINE[@]}") M="$V" ;;
            native) R=("${N[@]}") M="$V" ;;
            guest) R=("${D[@]}") M=benchdata:/data ;;
        esac
        timed ${side}_read "${R[@]}" run --rm -v "$M" "$BB" sh -c "$READ"
        timed ${side}_stat "${R[@]}" run --rm -v "$M" "$BB" sh -c "$STAT"
        timed ${side}_empty "${R[@]}" run --rm -v "$M" "$BB" true
    done
done
"${D[@]}" volume rm benchdata >/dev/null
"$BERTH_BIN" machine stop nine >/dev/null

say "4/5: memory given back after a container fills 400 MB"
qemu=$(cat "$BERTH_MACHINE_DIR/full/qemu.pid")
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
rss_before=$(rss "$qemu")
"${D[@]}" run -d --name fill "$BB" sh -c 'dd if=/dev/zero of=/dev/null bs=400M count=1; sleep 1000' >/dev/null
sleep 5
rss_peak=$(rss "$qemu")
"${D[@]}" rm -f fill >/dev/null
sleep 20
rss_after=$(rss "$qemu")
echo "$rss_before $rss_peak $rss_after" >"$TMP/rss"

say "5/5: idle for $IDLE s with no containers"
relay=$(cat "$BERTH_MACHINE_DIR/full/relay.pid")
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
c0=$(( $(cpu "$qemu") + $(cpu "$relay") ))
sleep "$IDLE"
c1=$(( $(cpu "$qemu") + $(cpu "$relay") ))
ticks=$(getconf CLK_TCK)
pss_kb=$(( $(pss "$qemu") + $(pss "$relay") ))

python3 - "$TMP" "$ROUNDS" "$c0" "$c1" "$ticks" "$IDLE" "$pss_kb" "$BERTH_MACHINE_ACCEL" "$FS" <<'PY'
import statistics, sys
tmp, rounds, c0, c1, ticks, idle, pss, accel, fs = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8]), sys.argv[8], sys.argv[9]
def med(n):
    with open(f"{tmp}/{n}.times") as f:
        return statistics.median(float(l) for l in f if l.strip())
floor, full, first = med("floor_start"), med("full_start"), med("full_first")
vm, native = med("vm_true"), med("native_true")
# Each bind figure less the same run without the work (start and stop of a container).
def work(n):
    return med(f"{n}") - med(n.split("_")[0] + "_empty")
vr, nr, vs, ns = work("vm_read"), work("native_read"), work("vm_stat"), work("native_stat")
pr, ps = work("nine_read"), work("nine_stat")
gr, gs = work("guest_read"), work("guest_stat")
before, peak, after = (int(x) for x in open(f"{tmp}/rss").read().split())
print(f"machine start ({accel})  full {full:.2f}s  floor {floor:.2f}s  full/floor {full/floor:.2f}x (target <= 1.3)")
print(f"first run --rm     {first:.2f}s after ready (waits for the guest's deferred setup)  start+first {full+first:.2f}s")
print(f"run --rm true      machine {vm:.3f}s  native {native:.3f}s  machine/native {vm/native:.1f}x")
print(f"bind 100 MB read   {fs} {vr:.2f}s  9p {pr:.2f}s  native {nr:.2f}s  {fs}/native {vr/nr:.1f}x  9p/native {pr/nr:.1f}x")
print(f"bind find+stat 10k {fs} {vs:.2f}s  9p {ps:.2f}s  native {ns:.2f}s  {fs}/native {vs/ns:.1f}x  9p/native {ps/ns:.1f}x")
print(f"guest's own disk   read {gr:.2f}s  find+stat {gs:.2f}s  (no sharing)  {fs}/guest: read {vr/gr:.1f}x  find+stat {vs/gs:.1f}x")
print(f"memory (QEMU RSS)  before {before/1024:.0f} MiB  peak {peak/1024:.0f} MiB  20 s after {after/1024:.0f} MiB  given back {100*(peak-after)/max(peak-before,1):.0f}% of the growth")
print(f"idle {idle} s           CPU {100 * (c1 - c0) / ticks / idle:.1f}% of a core (QEMU + relay)   PSS {pss / 1024:.0f} MiB")
PY
