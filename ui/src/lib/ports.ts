// Host-port suggestions for the Run wizard. The pure part lives here (tested); the app
// then asks the backend whether the port really binds (`suggest_host_port`).

/** "5000/tcp" → {port: 5000, protocol: "tcp"}. */
export function parseExposed(spec: string): { port: number; protocol: string } | null {
  const [p, proto] = spec.split("/");
  const port = Number(p);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { port, protocol: proto || "tcp" };
}

/**
 * A host port for a container port: the same number if unprivileged and free, 8000+port
 * for privileged ones (80 → 8080), then the next one not in `used`.
 */
export function suggestHostPort(containerPort: number, used: Set<number>): number {
  let p = containerPort < 1024 ? 8000 + containerPort : containerPort;
  if (p > 65535) p = 1024;
  for (let i = 0; i < 65536; i++) {
    if (!used.has(p)) return p;
    p = p >= 65535 ? 1024 : p + 1;
  }
  return p;
}

export function validPort(n: unknown): boolean {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535;
}
