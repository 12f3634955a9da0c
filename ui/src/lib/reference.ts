// Image references normalized the way docker does (and engine/reference does in Rust):
// `flask` → docker.io/library/flask:latest. The wizards show the result as you type.

export interface NormalizedRef {
  ok: boolean;
  /** Full reference, e.g. docker.io/library/flask:latest. */
  full: string;
  registry: string;
  repository: string;
  tag: string;
  digest: string;
  /** One sentence saying what is wrong, when !ok. */
  error: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

function fail(error: string): NormalizedRef {
  return { ok: false, full: "", registry: "", repository: "", tag: "", digest: "", error };
}

export function isRegistryHost(first: string): boolean {
  return first.includes(".") || first.includes(":") || first === "localhost";
}

export function normalizeReference(input: string): NormalizedRef {
  const text = input.trim();
  if (!text) return fail("Type an image name, for example flask or python:3.12.");
  if (/\s/.test(text)) return fail("An image name cannot contain spaces.");
  let rest = text;
  let digest = "";
  const at = rest.indexOf("@");
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return fail("The digest after @ must be sha256: followed by 64 hex digits.");
  }
  let tag = "";
  const colon = rest.lastIndexOf(":");
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return fail(`"${tag}" is not a valid tag: use letters, digits, '_', '.' and '-'.`);
  }
  const parts = rest.split("/");
  let registry = "docker.io";
  if (parts.length > 1 && isRegistryHost(parts[0])) {
    registry = parts.shift() as string;
    if (registry === "index.docker.io") registry = "docker.io";
  }
  if (parts.length === 0 || parts.some((p) => p === "")) return fail("The image name has an empty part between slashes.");
  for (const p of parts) {
    if (p !== p.toLowerCase()) return fail(`"${p}" must be lowercase.`);
    if (!COMPONENT.test(p)) return fail(`"${p}" is not a valid name part: use lowercase letters, digits and . _ -.`);
  }
  if (registry === "docker.io" && parts.length === 1) parts.unshift("library");
  const repository = parts.join("/");
  if (!tag && !digest) tag = "latest";
  const full = `${registry}/${repository}${tag ? ":" + tag : ""}${digest ? "@" + digest : ""}`;
  return { ok: true, full, registry, repository, tag, digest, error: "" };
}

/** The short form docker prints (drops docker.io/ and library/). */
export function familiarName(full: string): string {
  return full.replace(/^docker\.io\/library\//, "").replace(/^docker\.io\//, "");
}
