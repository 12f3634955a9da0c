# Shared by the bench-*.sh scripts (sourced, not run).

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

# unmount_under DIR: lazily unmounts everything mounted below DIR, deepest first.
unmount_under() {
    { grep -F " $1/" /proc/mounts || true; } | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
