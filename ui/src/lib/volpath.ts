// Folder paths inside a volume for the file browser: always absolute, "/" for the root.

export function childPath(dir: string, name: string): string {
  return dir === "/" || dir === "" ? `/${name}` : `${dir.replace(/\/+$/, "")}/${name}`;
}

export function parentPath(dir: string): string {
  const parts = dir.split("/").filter(Boolean);
  parts.pop();
  return `/${parts.join("/")}`;
}

/** The breadcrumb of `dir`: the root, then each folder on the way, with its path. */
export function crumbs(dir: string): { name: string; path: string }[] {
  const out = [{ name: "/", path: "/" }];
  let path = "";
  for (const part of dir.split("/").filter(Boolean)) {
    path += `/${part}`;
    out.push({ name: part, path });
  }
  return out;
}
