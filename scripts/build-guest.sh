#!/usr/bin/env bash
# Builds the Linux guest that runs Berth's engine inside a QEMU VM (macOS, Windows), from
# Debian packages only: `apt-get download` + `dpkg-deb -x`, no debootstrap, no host files
# in the image except what is said below.
#
#   bash scripts/build-guest.sh      prints, as its LAST stdout line, the absolute path of
#                                    the guest directory (progress goes to stderr)
#
# ── Output contract (berth's machine manager relies on it) ─────────────────────────────────
# ${CARGO_TARGET_DIR:-<repo>/target}/guest/<key>/ holds
#   vmlinuz      the Debian kernel of linux-image-amd64 (the versioned linux-image-6.1.*-amd64),
#                a bzImage. Not linux-image-cloud-amd64: the cloud kernel has no 9p at all
#                (CONFIG_NET_9P is unset), and 9p over virtio is the folder sharing QEMU itself
#                offers on macOS and Windows hosts (virtiofs needs a vhost-user virtiofsd,
#                Linux hosts only). Everything else needed is in both.
#   vmlinux      the same kernel, its ELF image decompressed at build time. QEMU boots it
#                through the kernel's PVH entry, skipping the in-guest xz decompression of
#                vmlinuz: 2.3 s instead of 4.9 s to the floor's ready line under TCG. Use it.
#   initrd.img   the full guest: a newc cpio, compressed as manifest.txt says (see below)
#   floor.img    the "floor": busybox only, its /init only signals ready (boot overhead)
#   manifest.txt lines "key: value":
#                  kernel: <uname -r of the guest>        compression: <none|gzip|zstd|lz4|xz>
#                  berth_sha256: <sha256 of the berth binary given, before stripping>
#                  key: <the cache key>                   kernel_package: <name> <version>
#                  package: <name> <version>              (one per .deb used, kernel included)
#                  module: <name>                         (as in /etc/berth-guest/modules)
#                  builtin: <name>                        (wanted, built into the kernel)
# <key> is a hash of this script, the exact .deb files apt would fetch (names and SHA256
# from `apt-get download --print-uris`), the berth binary's sha256 and the compression: a
# rerun with the same inputs does no work and prints the same path (saying "cached: <dir>"
# on stderr). guest/current is a symlink to the newest build or cache hit; the three most
# recently used keyed builds are kept. The .deb files are cached in guest/debs/. Builds
# take a lock (guest/.lock): concurrent runs wait, then find the build cached.
#
# The berth binary: $BERTH_BIN if set, else `cargo build --release -p berth` with the current
# CARGO_TARGET_DIR and <target>/release/berth. It is copied stripped.
#
# ── initrd.img (full guest) ─────────────────────────────────────────────────────────────────
#   /init                        #!/bin/sh + exec /usr/bin/berth guest-init "$@"  (PID 1)
#   /selftest                    rdinit=/selftest: loads the modules, checks berth, nft NAT,
#                                ext4 (mkfs + loop mount + fsck), overlay, bridge/veth/tun and,
#                                when the VM has them, /dev/vda (mkfs + mount), eth0 (DHCP)
#                                and 9p shares (mount + ls); writes each command, its output
#                                and exit code, then "BERTH-GUEST SELFTEST OK" (or "... FAILED
#                                <what>") to the port berth.link and the console; poweroff -f
#   /bin/busybox + applet links in /bin (and /sbin/modprobe, the kernel's modprobe path)
#   /usr/bin/berth (stripped), /usr/sbin/nft, /sbin/{mke2fs,mkfs.ext4,e2fsck,fsck.ext4,resize2fs},
#   /etc/mke2fs.conf, and every shared library they need (readelf NEEDED, recursively), taken
#   from the Debian packages at Debian's paths (/lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu,
#   /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)
#   /etc/ssl/certs/ca-certificates.crt   the ca-certificates .deb's /usr/share/ca-certificates/
#                                **/*.crt concatenated in C-locale path order (what
#                                update-ca-certificates does with every certificate enabled;
#                                not the host's bundle)
#   /etc/{passwd,group,hosts,nsswitch.conf}   root only; localhost; "hosts: files dns"
#   /lib/modules/<kver>/         only the modules of WANTED_MODULES below with their
#                                dependencies (+ modules.dep etc. from the host's depmod -b);
#                                /etc/berth-guest/modules lists them one per line in load order:
#                                `modprobe -a $(cat /etc/berth-guest/modules)` (busybox)
#   /dev has no /dev/virtio-ports/ links without udev: the inits here make
#   /dev/virtio-ports/<name> -> ../vportNpM from /sys/class/virtio-ports/vportNpM/name (the
#   Rust guest init has to do the same). /dev/console comes from the kernel's built-in
#   initramfs; the kernel starts init with no PATH.
#
# ── floor.img ───────────────────────────────────────────────────────────────────────────────
#   busybox-static + the virtio transport and virtio_console modules; /init mounts devtmpfs
#   and sysfs, loads them, waits for the port berth.link (sleep 0.01 between looks), writes
#   "BERTH-GUEST READY floor" to it, poweroff -f.
#
# ── QEMU (what the tests run; the Rust machine manager reproduces it) ───────────────────────
#   qemu-system-x86_64 -accel tcg -machine q35 -cpu max -smp 2 -m 1024 \
#     -nodefaults -no-user-config -nographic -no-reboot \
#     -kernel vmlinux -initrd initrd.img -append "console=ttyS0 panic=-1 quiet" \
#     -serial file:console.log \
#     -device virtio-serial-pci -chardev socket,id=link,path=link.sock,server=on,wait=off \
#     -device virtserialport,chardev=link,name=berth.link
#   optional devices (what the selftest test adds; all verified in the guest):
#     -drive file=data.img,format=raw,if=none,id=data -device virtio-blk-pci,drive=data
#     -netdev user,id=net -device virtio-net-pci,netdev=net
#     -virtfs local,path=DIR,mount_tag=TAG,security_model=none,id=TAG
#   The selftest adds rdinit=/selftest to -append. The host connects to link.sock (a unix
#   socket, QEMU listens) and reads lines. -no-reboot + panic=-1: a panicking or exiting init
#   ends QEMU too. KVM does not work on the machine this was measured on: always -accel tcg.
#
# ── Measurements (QEMU 7.2, TCG, a 2-core host shared with another test suite, so noisy;
#    wall time from spawning QEMU to the line on link.sock, median of 4-6 runs) ────────────
#   machine/kernel (floor.img, -smp 2):  q35 + vmlinux (PVH) 2.26 s   pc + vmlinux 2.29 s
#                                        q35 + vmlinuz 4.87 s          microvm + vmlinuz 4.68 s
#     microvm (its virtio-mmio devices, found through ACPI: the kernel lacks
#     VIRTIO_MMIO_CMDLINE_DEVICES) never boots vmlinux through PVH under TCG (no output at
#     all) and hung in 1 of 4 vmlinuz boots; q35 + vmlinux is kept. -smp 1 would save ~0.7 s
#     (floor 1.79 s, selftest 3.40 s vs 4.38 s): bringing up the second vCPU under TCG.
#   initrd compression (full selftest, q35 + vmlinux; size with the release berth; init
#   started at / QEMU exited):
#     none 37.0 MB 2.09 s / 4.28 s    lz4 -l -12 16.3 MB 2.11 s / 4.36 s
#     gzip -9 14.2 MB 2.41 s / 4.69 s zstd -19 10.7 MB 2.40 s / 4.70 s   xz 9.9 MB 4.35 s / 6.62 s
#   -> none (lz4 is as fast within the noise, at 44 % of the size). floor.img: 2.5 MB, none.
#   Where the floor's ~2.2 s go (loglevel=8): QEMU + SeaBIOS ~0.3 s, second vCPU 0.6 s, the
#   rest of the kernel's init spread thin; /init itself a few ms.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SELF="$REPO/scripts/build-guest.sh"

say() { printf 'build-guest.sh: %s\n' "$*" >&2; }
fail() {
    printf 'build-guest.sh: %s\n' "$*" >&2
    exit 1
}

# ── inputs ──────────────────────────────────────────────────────────────────────────────────
KERNEL_META=linux-image-amd64
# Userland packages, resolved with their Depends/Pre-Depends closure (libraries).
USER_ROOTS=(nftables e2fsprogs libc6 libgcc-s1)
# Packages taken alone (their dependencies are not needed: a static binary, data).
LONE_PACKAGES=(busybox-static ca-certificates)
# Initramfs compression, chosen by measurement (see above). BERTH_GUEST_COMPRESSION
# overrides it (none, gzip, zstd, lz4, xz), for measuring.
COMPRESSION=${BERTH_GUEST_COMPRESSION:-none}

# What the guest needs: each name is a module (taken with its dependencies) or built in
# (modules.builtin); anything else fails the build. Order: load order of the roots.
WANTED_MODULES=(
    virtio_pci virtio_mmio                          # virtio transports (q35: pci; microvm: mmio)
    virtio_console virtio_blk virtio_net virtio_balloon virtio_rng
    crc32c_generic ext4                             # the data disk; crc32c for metadata_csum
    loop overlay                                    # image layers
    9p 9pnet_virtio fuse virtiofs                   # folder sharing
    vsock vmw_vsock_virtio_transport                # host<->guest sockets
    af_packet unix ipv6                             # udhcpc's raw socket; local sockets; IPv6
    veth bridge br_netfilter tun                    # container networks
    nf_tables nf_conntrack nf_nat nft_chain_nat     # Berth's NAT (engine/net/src/nat.rs) ...
    nft_nat nft_masq nft_redir nft_ct nft_fib_inet nft_reject_inet  # ... dnat, redirect, ct, fib
)
# Kernel options that must be built in (=y); no module can stand in for these.
REQUIRED_BUILTIN=(
    DEVTMPFS TMPFS BLK_DEV_INITRD SERIAL_8250_CONSOLE PCI ACPI
    CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED CPUSETS CGROUP_DEVICE CGROUP_FREEZER BLK_CGROUP CGROUP_BPF
    NAMESPACES USER_NS PID_NS NET_NS UTS_NS IPC_NS SECCOMP_FILTER POSIX_MQUEUE KEYS
    NETFILTER NF_TABLES_INET NF_TABLES_IPV4 NF_TABLES_IPV6 NF_NAT_MASQUERADE
)
# The floor image: the transports and the serial port only.
FLOOR_MODULES=(virtio_pci virtio_mmio virtio_console)
APPLETS=(sh ash mount umount modprobe insmod rmmod lsmod ip ifconfig route poweroff reboot halt
    fstrim sleep cat ls echo mkdir rmdir uname hwclock date udhcpc dmesg ln rm cp mv grep sed
    tr head tail wc printf test '[' true false sync mknod chmod chown readlink sysctl ps kill
    env which find xargs cut sort uniq tee touch truncate stat df du free losetup blkdiscard hostname
    nproc seq timeout usleep tunctl switch_root pivot_root nsenter unshare)

case "$COMPRESSION" in
    none | gzip | zstd | lz4 | xz) ;;
    *) fail "unknown compression \"$COMPRESSION\": use none, gzip, zstd, lz4 or xz" ;;
esac

# ── tools ───────────────────────────────────────────────────────────────────────────────────
need() { # need <command> <debian package>
    PATH="$PATH:/usr/sbin:/sbin" command -v "$1" >/dev/null 2>&1 ||
        fail "missing $1: apt-get install $2 (or bash scripts/install.sh tests)"
}
need apt-get apt
need apt-cache apt
need dpkg-deb dpkg
need cpio cpio
need depmod kmod
need readelf binutils
need strip binutils
need sha256sum coreutils
need flock util-linux
need xz xz-utils # the kernel's payload
need od coreutils
case "$COMPRESSION" in
    gzip) need gzip gzip ;;
    zstd) need zstd zstd ;;
    lz4) need lz4 lz4 ;;
esac
DEPMOD=$(PATH="$PATH:/usr/sbin:/sbin" command -v depmod)

TARGET=${CARGO_TARGET_DIR:-$REPO/target}
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac
OUT="$TARGET/guest"
DEBS="$OUT/debs"
mkdir -p "$DEBS"

# ── the berth binary ────────────────────────────────────────────────────────────────────────
if [ -n "${BERTH_BIN:-}" ]; then
    [ -f "$BERTH_BIN" ] && [ -x "$BERTH_BIN" ] || fail "BERTH_BIN=$BERTH_BIN is not an executable file"
else
    say "cargo build --release -p berth (CARGO_TARGET_DIR=$TARGET)"
    (cd "$REPO" && CARGO_TARGET_DIR="$TARGET" cargo build --release -p berth) >&2 ||
        fail "cargo build --release -p berth failed (its message is above)"
    BERTH_BIN="$TARGET/release/berth"
fi
BERTH_SHA=$(sha256sum "$BERTH_BIN" | cut -d' ' -f1)

# ── which .deb files (a look at the package lists, no download) ─────────────────────────────
no_pkg_hint="the package lists may be stale or missing: run apt-get update, then this again"
kernel_pkg=$(apt-cache depends "$KERNEL_META" 2>/dev/null |
    sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p')
[ "$(printf '%s\n' "$kernel_pkg" | grep -c .)" = 1 ] ||
    fail "cannot tell which kernel $KERNEL_META depends on (apt-cache depends $KERNEL_META): $no_pkg_hint"
mapfile -t user_pkgs < <(
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "${USER_ROOTS[@]}" 2>/dev/null | grep -v '^[ <]' | LC_ALL=C sort -u
)
[ "${#user_pkgs[@]}" -ge "${#USER_ROOTS[@]}" ] ||
    fail "apt-cache depends ${USER_ROOTS[*]} found too little: $no_pkg_hint"
ALL_PKGS=("$kernel_pkg" "${user_pkgs[@]}" "${LONE_PACKAGES[@]}")

# apt-get download --print-uris lists nothing for a file already in the current directory.
empty=$(mktemp -d "${TMPDIR:-/tmp}/build-guest.XXXXXX")
uris=$(cd "$empty" && apt-get download --print-uris "${ALL_PKGS[@]}" 2>&1) ||
    { rmdir "$empty"; fail "apt-get download --print-uris failed: $uris; $no_pkg_hint"; }
rmdir "$empty"
# "'<uri>' <file.deb> <size> SHA256:<hex>" -> "<file.deb> <hex>"
debs_list=$(printf '%s\n' "$uris" | awk '$2 ~ /\.deb$/ { sub(/^SHA256:/, "", $4); print $2, $4 }' | LC_ALL=C sort)
[ "$(printf '%s\n' "$debs_list" | grep -c .)" = "${#ALL_PKGS[@]}" ] ||
    fail "apt-get download --print-uris named $(printf '%s\n' "$debs_list" | grep -c .) files for ${#ALL_PKGS[@]} packages: $uris"

KEY=$({
    sha256sum <"$SELF"
    printf '%s\n' "$debs_list" "berth $BERTH_SHA" "compression $COMPRESSION"
} | sha256sum | cut -c1-16)
DEST="$OUT/$KEY"

exec 9>"$OUT/.lock"
flock 9 # one build at a time (tests run in parallel); the others then find it cached

if [ -f "$DEST/manifest.txt" ]; then
    touch "$DEST/manifest.txt" # the pruning below keeps the most recently used builds
    ln -sfn "$KEY" "$OUT/current"
    say "cached: $DEST"
    printf '%s\n' "$DEST"
    exit 0
fi

# ── downloads (cached in guest/debs, checked against the lists' SHA256) ─────────────────────
deb_ok() { [ -f "$DEBS/$1" ] && [ "$(sha256sum "$DEBS/$1" | cut -d' ' -f1)" = "$2" ]; }
fetch=()
while read -r file sha; do
    deb_ok "$file" "$sha" || fetch+=("${file%%_*}")
done <<<"$debs_list"
if [ "${#fetch[@]}" -gt 0 ]; then
    say "apt-get download ${fetch[*]}"
    apt_opts=()
    [ "$(id -u)" -ne 0 ] || apt_opts=(-o APT::Sandbox::User=root) # root: no _apt sandbox warning
    (cd "$DEBS" && apt-get download -q "${apt_opts[@]}" "${fetch[@]}") >&2 ||
        fail "apt-get download failed (its message is above); $no_pkg_hint"
fi
while read -r file sha; do
    deb_ok "$file" "$sha" || fail "$DEBS/$file is missing or its SHA256 is not the package list's $sha"
done <<<"$debs_list"
deb_of() { printf '%s\n' "$debs_list" | awk -v p="$1" 'index($1, p "_") == 1 { print $1 }'; }

# ── build in a scratch directory, moved into place when complete ───────────────────────────
WORK=$(mktemp -d "$OUT/.build-$KEY.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
PKGS="$WORK/pkgs"   # all userland packages extracted together
KROOT="$WORK/kernel" # the kernel package
R="$WORK/root"      # the full guest
F="$WORK/floor"     # the floor
B="$WORK/out"       # the result
mkdir -p "$PKGS" "$KROOT" "$R" "$F" "$B"

say "extracting ${#ALL_PKGS[@]} packages"
dpkg-deb -x "$DEBS/$(deb_of "$kernel_pkg")" "$KROOT"
for p in "${user_pkgs[@]}" "${LONE_PACKAGES[@]}"; do
    dpkg-deb -x "$DEBS/$(deb_of "$p")" "$PKGS"
done

# ── kernel ──────────────────────────────────────────────────────────────────────────────────
vmlinuz=$(find "$KROOT/boot" -maxdepth 1 -name 'vmlinuz-*' | head -n1)
[ -n "$vmlinuz" ] || fail "$kernel_pkg has no /boot/vmlinuz-*"
KVER=${vmlinuz##*/vmlinuz-}
CONFIG="$KROOT/boot/config-$KVER"
MODDIR="$KROOT/lib/modules/$KVER"
[ -f "$CONFIG" ] && [ -d "$MODDIR" ] || fail "$kernel_pkg lacks boot/config-$KVER or lib/modules/$KVER"
cp "$vmlinuz" "$B/vmlinuz"
# vmlinux: the same kernel's ELF image, decompressed from the bzImage's payload (boot
# protocol: setup_sects at 0x1f1, payload_offset/length at 0x248/0x24c). QEMU boots it
# through its PVH entry note, without the in-guest xz decompression: ~3.3 s less under TCG.
u8() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
setup_sects=$(u8 "$vmlinuz" $((0x1f1)))
[ "$setup_sects" -ne 0 ] || setup_sects=4
payload_at=$(((setup_sects + 1) * 512 + $(u32 "$vmlinuz" $((0x248)))))
payload_len=$(u32 "$vmlinuz" $((0x24c)))
magic=$(od -An -tx1 -j "$payload_at" -N6 "$vmlinuz" | tr -d ' ')
[ "$magic" = fd377a585a00 ] || fail "vmlinuz's payload is not xz (magic $magic): teach scripts/build-guest.sh its format"
head -c $((payload_at + payload_len)) "$vmlinuz" | tail -c "$payload_len" | xz -dc --single-stream >"$B/vmlinux" ||
    fail "could not decompress vmlinuz's xz payload"
readelf -n "$B/vmlinux" | grep -q '(0x00000012)' ||
    fail "the decompressed vmlinux has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): QEMU cannot boot it directly"

rd_option=$(printf '%s' "$COMPRESSION" | tr 'a-z' 'A-Z')
for opt in "${REQUIRED_BUILTIN[@]}" $([ "$COMPRESSION" = none ] || echo "RD_$rd_option"); do
    grep -qx "CONFIG_$opt=y" "$CONFIG" || fail "kernel $KVER: CONFIG_$opt is not built in (=y); the guest needs it"
done

"$DEPMOD" -b "$KROOT" "$KVER" # the package ships no modules.dep (its postinst makes it)
declare -A MOD_PATH MOD_DEPS BUILTIN
while IFS= read -r line; do
    path=${line%%:*}
    name=${path##*/}
    name=${name%.ko*}
    name=${name//-/_}
    MOD_PATH[$name]=$path
    deps=""
    for d in ${line#*:}; do
        d=${d##*/}
        d=${d%.ko*}
        deps+="${d//-/_} "
    done
    MOD_DEPS[$name]=$deps
done <"$MODDIR/modules.dep"
while IFS= read -r path; do
    name=${path##*/}
    name=${name%.ko*}
    BUILTIN[${name//-/_}]=1
done <"$MODDIR/modules.builtin"

# Modules in load order: each after its dependencies (depth first, post-order).
declare -A SEEN
ORDER=()
visit() {
    local m=$1 d
    [ -z "${SEEN[$m]:-}" ] || return 0
    SEEN[$m]=1
    for d in ${MOD_DEPS[$m]}; do visit "$d"; done
    ORDER+=("$m")
}
resolve() { # resolve <names…>: fills ORDER (modules) and BUILTINS (built-in names)
    SEEN=()
    ORDER=()
    BUILTINS=()
    local m
    for m in "$@"; do
        if [ -n "${MOD_PATH[$m]:-}" ]; then
            visit "$m"
        elif [ -n "${BUILTIN[$m]:-}" ]; then
            BUILTINS+=("$m")
        else
            fail "kernel $KVER has no module $m and does not build it in: the guest needs it"
        fi
    done
}
install_modules() { # install_modules <root> <names…>
    local root=$1 m
    shift
    mkdir -p "$root/lib/modules/$KVER" "$root/etc/berth-guest"
    for m in "$@"; do
        mkdir -p "$root/lib/modules/$KVER/$(dirname "${MOD_PATH[$m]}")"
        cp "$MODDIR/${MOD_PATH[$m]}" "$root/lib/modules/$KVER/${MOD_PATH[$m]}"
    done
    cp "$MODDIR/modules.order" "$MODDIR/modules.builtin" "$MODDIR/modules.builtin.modinfo" "$root/lib/modules/$KVER/"
    "$DEPMOD" -b "$root" "$KVER"
    printf '%s\n' "$@" >"$root/etc/berth-guest/modules"
}

# ── userland: files from the extracted packages, at Debian's paths ──────────────────────────
# put <path relative to />: copies it from the packages; a symlink brings its target too.
put() {
    local rel=$1 dest target
    dest="$R/$rel"
    [ -e "$dest" ] || [ -L "$dest" ] && return 0
    [ -e "$PKGS/$rel" ] || [ -L "$PKGS/$rel" ] || fail "/$rel is in none of the packages (${user_pkgs[*]} ${LONE_PACKAGES[*]})"
    mkdir -p "$(dirname "$dest")"
    cp -a "$PKGS/$rel" "$dest"
    if [ -L "$PKGS/$rel" ]; then
        target=$(readlink "$PKGS/$rel")
        case "$target" in
            /*) put "${target#/}" ;;
            *) put "$(dirname "$rel")/$target" ;;
        esac
    fi
}
LIBDIRS=(lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu lib64 usr/lib64 lib usr/lib)
# libs <elf> <who>: every NEEDED library and the interpreter, recursively.
declare -A HAVE_LIB
libs() {
    local elf=$1 who=$2 so dir found interp
    interp=$(readelf -l "$elf" 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
    [ -z "$interp" ] || put "${interp#/}"
    for so in $(readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
        [ -z "${HAVE_LIB[$so]:-}" ] || continue
        found=""
        for dir in "${LIBDIRS[@]}"; do
            if [ -e "$PKGS/$dir/$so" ]; then
                found="$dir/$so"
                break
            fi
        done
        [ -n "$found" ] || fail "$so, needed by $who, is in none of the extracted packages (${user_pkgs[*]}): add the Debian package that ships it to USER_ROOTS in scripts/build-guest.sh"
        HAVE_LIB[$so]=1
        put "$found"
        libs "$(readlink -f "$PKGS/$found")" "$so"
    done
}

say "assembling the guest root (kernel $KVER)"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,etc/ssl/certs,etc/berth-guest,dev,proc,sys,run,tmp,root,mnt,var/tmp}
chmod 1777 "$R/tmp" "$R/var/tmp"
chmod 0700 "$R/root"
put bin/busybox
for a in "${APPLETS[@]}"; do ln -s busybox "$R/bin/$a"; done
ln -s ../bin/busybox "$R/sbin/modprobe" # CONFIG_MODPROBE_PATH: the kernel's own requests
# resize2fs grows the data disk's ext4 when `berth machine set --disk-size` made it longer.
for f in usr/sbin/nft sbin/mke2fs sbin/mkfs.ext4 sbin/e2fsck sbin/fsck.ext4 sbin/resize2fs etc/mke2fs.conf; do put "$f"; done
strip --strip-all -o "$R/usr/bin/berth" "$BERTH_BIN"
for f in usr/bin/berth usr/sbin/nft sbin/mke2fs sbin/e2fsck sbin/resize2fs; do libs "$R/$f" "/$f"; done

find "$PKGS/usr/share/ca-certificates" -name '*.crt' | LC_ALL=C sort | while read -r crt; do
    sed -e '$a\' "$crt"
done >"$R/etc/ssl/certs/ca-certificates.crt"
[ -s "$R/etc/ssl/certs/ca-certificates.crt" ] || fail "ca-certificates has no certificates under /usr/share/ca-certificates"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$R/etc/hosts"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$R/etc/nsswitch.conf"

resolve "${WANTED_MODULES[@]}"
MODULES=("${ORDER[@]}")
BUILTIN_WANTED=("${BUILTINS[@]}")
install_modules "$R" "${MODULES[@]}"

cat >"$R/init" <<'EOF'
#!/bin/sh
exec /usr/bin/berth guest-init "$@"
EOF

# The port helper shared by /selftest and the floor's /init: devtmpfs has vportNpM nodes
# only; udev would add /dev/virtio-ports/<name>. Waits up to $2 hundredths of a second.
PORT_SH='
link_port() { # link_port <name> <tries>: makes /dev/virtio-ports/<name>, 0 when it exists
    tries=$2
    while [ "$tries" -gt 0 ]; do
        for f in /sys/class/virtio-ports/*/name; do
            [ -r "$f" ] || continue
            read -r n <"$f" || n=""
            if [ "$n" = "$1" ]; then
                p=${f%/name}
                p=${p##*/}
                if [ -c "/dev/$p" ]; then
                    mkdir -p /dev/virtio-ports
                    ln -sf "../$p" "/dev/virtio-ports/$1"
                    return 0
                fi
            fi
        done
        sleep 0.01
        tries=$((tries - 1))
    done
    return 1
}
'

{
    printf '#!/bin/sh\n'
    cat <<'EOF'
# Berth guest selftest (kernel cmdline rdinit=/selftest): proves the payload works in the
# guest kernel, reports on the virtio-serial port berth.link and the console, powers off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
read -r started _ </proc/uptime
exec </dev/console >/dev/console 2>&1
LOG=/tmp/selftest.log
failed=""
run() { # run <label> <command…>: records command, output and exit code
    label=$1
    shift
    out=$("$@" 2>&1)
    rc=$?
    { echo "\$ $*"; [ -z "$out" ] || echo "$out"; echo "exit $rc"; } >>"$LOG"
    [ "$rc" -eq 0 ] || failed="$failed $label"
}
EOF
    printf '%s\n' "$PORT_SH"
    cat <<'EOF'
echo "guest kernel: $(uname -r)" >>"$LOG"
run modules modprobe -a $(cat /etc/berth-guest/modules)
run berth /usr/bin/berth --version
run nft-version nft --version
# engine/net/src/nat.rs's rules for a network on bridge berth0, plus a DNAT and a redirect
cat >/tmp/nat.nft <<'NFT'
add table ip berth
add chain ip berth nat_berth0 { type nat hook postrouting priority 100; policy accept; }
flush chain ip berth nat_berth0
add rule ip berth nat_berth0 ip saddr 172.30.0.0/16 oifname != "berth0" masquerade comment "berth network selftest"
add chain ip berth fwd_berth0 { type filter hook forward priority 0; policy accept; }
flush chain ip berth fwd_berth0
add rule ip berth fwd_berth0 iifname "berth0" accept
add rule ip berth fwd_berth0 oifname "berth0" ct state established,related accept
add rule ip berth fwd_berth0 oifname "berth0" iifname != "berth0" ct state new drop comment "berth network selftest isolation"
add chain ip berth dnat_pre { type nat hook prerouting priority -100; policy accept; }
add rule ip berth dnat_pre fib daddr type local tcp dport 8080 dnat to 172.30.0.2:80
add chain ip berth dnat_out { type nat hook output priority -100; policy accept; }
add rule ip berth dnat_out tcp dport 8081 redirect to :80
NFT
run nft-nat nft -f /tmp/nat.nft
run nft-list nft list table ip berth
run mkfs-version mkfs.ext4 -V
run mkfs truncate -s 32M /tmp/disk.img
run mkfs mkfs.ext4 -q -F /tmp/disk.img
run fsck fsck.ext4 -n -f /tmp/disk.img
run resize truncate -s 48M /tmp/disk.img
run resize e2fsck -f -p /tmp/disk.img
run resize resize2fs /tmp/disk.img
mkdir -p /mnt/disk
run ext4-mount mount -o loop -t ext4 /tmp/disk.img /mnt/disk
run ext4-umount umount /mnt/disk
mkdir -p /tmp/ov/lower /tmp/ov/upper /tmp/ov/work /tmp/ov/merged
echo lower >/tmp/ov/lower/file
run overlay mount -t overlay overlay -o lowerdir=/tmp/ov/lower,upperdir=/tmp/ov/upper,workdir=/tmp/ov/work /tmp/ov/merged
run overlay grep -qx lower /tmp/ov/merged/file
run overlay-umount umount /tmp/ov/merged
run bridge ip link add berth0 type bridge
run veth ip link add bveth0 type veth
run veth ip link set bveth0 master berth0
run tun tunctl -t btap0
run certs grep -q 'BEGIN CERTIFICATE' /etc/ssl/certs/ca-certificates.crt
# The optional devices, each checked when the VM has it: a data disk, a user-mode network,
# 9p shares.
if [ -b /dev/vda ]; then
    run disk-mkfs mkfs.ext4 -q -F /dev/vda
    mkdir -p /mnt/data
    run disk-mount mount -t ext4 /dev/vda /mnt/data
    run disk-write sh -c 'echo berth >/mnt/data/probe && sync'
    run disk-umount umount /mnt/data
fi
if [ -e /sys/class/net/eth0 ]; then
    run net-up ip link set eth0 up
    run net-dhcp udhcpc -i eth0 -n -q -t 5 -T 1 -s /bin/true
fi
for t in /sys/bus/virtio/devices/*/mount_tag; do
    [ -r "$t" ] || continue
    read -r tag <"$t" || true
    mkdir -p "/mnt/$tag"
    run 9p-mount mount -t 9p -o trans=virtio,version=9p2000.L "$tag" "/mnt/$tag"
    run 9p-list ls "/mnt/$tag"
done
if link_port berth.link 1000; then
    PORT=/dev/virtio-ports/berth.link
else
    PORT=/dev/null
    failed="$failed link-port"
fi
if [ -z "$failed" ]; then result="BERTH-GUEST SELFTEST OK"; else result="BERTH-GUEST SELFTEST FAILED$failed"; fi
read -r ended _ </proc/uptime
echo "selftest: started at ${started}s of guest uptime, ended at ${ended}s" >>"$LOG"
echo "$result" >>"$LOG"
cat "$LOG"
cat "$LOG" >"$PORT"
sync
poweroff -f
EOF
} >"$R/selftest"
chmod 0755 "$R/init" "$R/selftest"

# ── floor ───────────────────────────────────────────────────────────────────────────────────
mkdir -p "$F"/{bin,dev,proc,sys,etc/berth-guest}
cp -a "$PKGS/bin/busybox" "$F/bin/busybox"
for a in sh mount modprobe sleep mkdir ln poweroff; do ln -s busybox "$F/bin/$a"; done
resolve "${FLOOR_MODULES[@]}"
FLOOR_ORDER=("${ORDER[@]}")
install_modules "$F" "${FLOOR_ORDER[@]}"
{
    printf '#!/bin/sh\n'
    cat <<'EOF'
# Berth guest floor: the least a guest can do, signal ready (boot overhead benchmark).
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t sysfs sys /sys
EOF
    printf 'modprobe -a %s\n' "${FLOOR_ORDER[*]}"
    printf '%s\n' "$PORT_SH"
    cat <<'EOF'
link_port berth.link 100000 && echo "BERTH-GUEST READY floor" >/dev/virtio-ports/berth.link
poweroff -f
EOF
} >"$F/init"
chmod 0755 "$F/init"

# ── run the binaries once on this machine (same architecture): a missing library shows now ──
if [ "$(id -u)" -eq 0 ] && command -v chroot >/dev/null 2>&1; then
    for c in "/usr/bin/berth --version" "/usr/sbin/nft --version" "/sbin/mke2fs -V" "/sbin/e2fsck -V" "/bin/sh -c true"; do
        chroot "$R" $c >/dev/null 2>&1 || fail "the guest's $c does not run (in a chroot of the guest root): $(chroot "$R" $c 2>&1 | head -n3)"
    done
fi

# ── archives ────────────────────────────────────────────────────────────────────────────────
compress() {
    case "$COMPRESSION" in
        none) cat ;;
        gzip) gzip -9 -n ;;
        zstd) zstd -q -19 -T1 ;;
        lz4) lz4 -q -l -12 ;; # the kernel reads the legacy lz4 format only
        xz) xz -q --check=crc32 -T1 ;;
    esac
}
pack() { # pack <root> <file>
    (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R +0:+0 --reproducible) | compress >"$2"
}
say "packing initrd.img and floor.img ($COMPRESSION)"
pack "$R" "$B/initrd.img"
pack "$F" "$B/floor.img"

{
    printf 'kernel: %s\n' "$KVER"
    printf 'kernel_package: %s %s\n' "$kernel_pkg" "$(dpkg-deb -f "$DEBS/$(deb_of "$kernel_pkg")" Version)"
    printf 'compression: %s\n' "$COMPRESSION"
    printf 'berth_sha256: %s\n' "$BERTH_SHA"
    printf 'key: %s\n' "$KEY"
    for p in "${ALL_PKGS[@]}"; do
        printf 'package: %s %s\n' "$p" "$(dpkg-deb -f "$DEBS/$(deb_of "$p")" Version)"
    done
    for m in "${MODULES[@]}"; do printf 'module: %s\n' "$m"; done
    for m in "${BUILTIN_WANTED[@]}"; do printf 'builtin: %s\n' "$m"; done
} >"$B/manifest.txt.tmp"
mv "$B/manifest.txt.tmp" "$B/manifest.txt" # last: a directory with a manifest is complete

rm -rf "$DEST"
mv -T "$B" "$DEST"
ln -sfn "$KEY" "$OUT/current"
# Keep the three most recently used builds (by manifest.txt's mtime, touched on a cache hit).
ls -1dt "$OUT"/[0-9a-f]*/manifest.txt 2>/dev/null | tail -n +4 | while read -r old; do
    rm -rf "$(dirname "$old")"
done
say "built $DEST: initrd.img $(du -h "$DEST/initrd.img" | cut -f1), floor.img $(du -h "$DEST/floor.img" | cut -f1)"
printf '%s\n' "$DEST"
