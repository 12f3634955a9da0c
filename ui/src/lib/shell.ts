// Equivalent `docker` commands for the wizards, quoted so they paste into a shell.

const SAFE = /^[A-Za-z0-9_./:=@%+,-]+$/;

export function shellQuote(word: string): string {
  if (word === "") return "''";
  if (SAFE.test(word)) return word;
  return "'" + word.replace(/'/g, `'\\''`) + "'";
}

export function commandLine(words: string[]): string {
  return words.map(shellQuote).join(" ");
}

export interface PortRowInput {
  host: number | null;
  container: number | null;
  protocol: string;
}

export function pullCommand(reference: string, platform: string): string {
  const w = ["docker", "pull"];
  if (platform) w.push("--platform", platform);
  w.push(reference || "IMAGE");
  return commandLine(w);
}

export function runCommand(opts: {
  image: string;
  name: string;
  ports: PortRowInput[];
  env: string[];
  volumes: string[];
  command: string[];
}): string {
  const w = ["docker", "run", "-d"];
  if (opts.name) w.push("--name", opts.name);
  for (const p of opts.ports) {
    if (!p.host || !p.container) continue;
    w.push("-p", `${p.host}:${p.container}${p.protocol && p.protocol !== "tcp" ? "/" + p.protocol : ""}`);
  }
  for (const e of opts.env) if (e) w.push("-e", e);
  for (const v of opts.volumes) if (v) w.push("-v", v);
  w.push(opts.image || "IMAGE");
  w.push(...opts.command);
  return commandLine(w);
}

export function buildCommand(opts: { dir: string; dockerfile: string; tag: string; args: { key: string; value: string }[] }): string {
  const w = ["docker", "build"];
  if (opts.dockerfile && opts.dockerfile !== "Dockerfile") w.push("-f", `${opts.dir.replace(/\/$/, "")}/${opts.dockerfile}`);
  w.push("-t", opts.tag || "TAG");
  for (const a of opts.args) if (a.key) w.push("--build-arg", `${a.key}=${a.value}`);
  w.push(opts.dir || ".");
  return commandLine(w);
}

export function pushCommands(opts: { source: string; target: string; registry: string; user: string; login: boolean }): string {
  const lines: string[] = [];
  if (opts.login) {
    const w = ["docker", "login"];
    if (opts.registry && opts.registry !== "docker.io") w.push(opts.registry);
    if (opts.user) w.push("-u", opts.user);
    lines.push(commandLine(w));
  }
  if (opts.source && opts.target && opts.source !== opts.target) lines.push(commandLine(["docker", "tag", opts.source, opts.target]));
  lines.push(commandLine(["docker", "push", opts.target || "USER/REPO:TAG"]));
  return lines.join("\n");
}

/** Split a command line typed by the user into words (quotes respected, no expansion). */
export function splitWords(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | null = null;
  let has = false;
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = null;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (cur || has) out.push(cur);
      cur = "";
      has = false;
    } else cur += ch;
  }
  if (cur || has) out.push(cur);
  return out;
}
