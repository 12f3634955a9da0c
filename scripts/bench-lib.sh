# Shared by the bench-*.sh scripts (sourced, not run). The script sets ROOT (the repository)
# and BENCH (its own name, for messages) before sourcing this, and TMP (its scratch
# directory) before it calls the functions that use it.

BERTH_BIN="${BERTH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/berth}"
FIXTURES="${BERTH_FIXTURES:-$ROOT/tests/fixtures/out}"
REG_PID=""

say() { printf '%s: %s\n' "$BENCH" "$*" >&2; }

# need TOOL...: exits with the next step when BERTH_BIN is not built or a TOOL is missing.
need() {
    [ -x "$BERTH_BIN" ] || { say "berth binary not found at $BERTH_BIN: cargo build --release -p berth (or set BERTH_BIN)"; exit 1; }
    local bin
    for bin in "$@"; do
        command -v "$bin" >/dev/null 2>&1 || { say "missing $bin: run bash scripts/install.sh tests"; exit 1; }
    done
}

# start_registry DIR: starts docker-registry on a free loopback port with its storage in
# DIR/registry and waits until it answers; sets PORT and REG_PID.
start_registry() {
    local dir="$1"
    PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    cat >"$dir/registry.yml" <<YML
version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: $dir/registry } }
http: { addr: 127.0.0.1:$PORT }
YML
    docker-registry serve "$dir/registry.yml" >/dev/null 2>&1 &
    REG_PID=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break; sleep 0.05; done
}

# push_fixture NAME REPO: the fixture image NAME into the registry as REPO:latest.
push_fixture() {
    skopeo copy -q --dest-tls-verify=false "oci:$FIXTURES/$1:latest" "docker://127.0.0.1:$PORT/$2:latest"
}

# rm_containers BERTH...: removes every container of that berth (the binary and its --root).
rm_containers() {
    "$@" rm -f $("$@" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
}

# unmount_under DIR: lazily unmounts everything mounted below DIR, deepest first.
unmount_under() {
    { grep -F " $1/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}

# remove_tmp: stops the registry, then unmounts and removes TMP (the end of a cleanup trap).
remove_tmp() {
    if [ -n "$REG_PID" ]; then kill "$REG_PID" 2>/dev/null || true; fi
    unmount_under "$TMP"
    rm -rf "$TMP"
}

# now; record NAME END START: appends END - START (seconds) to TMP/NAME.times.
now() { date +%s.%N; }
record() { python3 -c "print(f'{$2 - $3:.4f}')" >>"$TMP/$1.times"; }

# timed NAME CMD...: runs CMD (output dropped) and records its wall time as NAME; a failure
# stops the benchmark with the end of what CMD printed on stderr.
# A step that hangs fails the benchmark after BENCH_STEP_LIMIT seconds (default 600).
timed() {
    local name=$1 s e; shift; s=$(now)
    timeout "${BENCH_STEP_LIMIT:-600}" "$@" >/dev/null 2>"$TMP/err" || { say "$name failed or hung: $*: $(tail -3 "$TMP/err")"; exit 1; }
    e=$(now); record "$name" "$e" "$s"
}
