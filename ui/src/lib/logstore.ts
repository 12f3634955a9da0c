// The Logs view's data: up to millions of lines in parallel arrays (cheaper than one
// object per line), search over them, and highlight splitting for the visible rows.

export interface Segment {
  text: string;
  hit: boolean;
}

export class LogStore {
  text: string[] = [];
  ts: string[] = [];
  stderr: boolean[] = [];

  get length(): number {
    return this.text.length;
  }

  append(lines: { text: string; ts: string; stderr: boolean }[]): void {
    for (const l of lines) {
      this.text.push(l.text);
      this.ts.push(l.ts);
      this.stderr.push(l.stderr);
    }
  }

  /** A column-wise batch from the backend (see LogBatch in src-tauri/src/dto.rs). */
  appendColumns(text: string, ts: string, stderr: string, count: number): void {
    if (count === 0) return;
    const t = text.split("\n");
    const s = ts.split("\n");
    for (let i = 0; i < count; i++) {
      this.text.push(t[i] ?? "");
      this.ts.push(s[i] ?? "");
      this.stderr.push(stderr.charCodeAt(i) === 49);
    }
  }

  clear(): void {
    this.text = [];
    this.ts = [];
    this.stderr = [];
  }

  /** Indices of lines containing `query` (case-insensitive unless it has capitals). */
  search(query: string): Int32Array {
    return searchLines(this.text, query);
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Smart case like ripgrep: all-lowercase queries ignore case, any capital makes it exact. */
export function searchLines(lines: string[], query: string): Int32Array {
  if (!query) return new Int32Array(0);
  const hits = new Int32Array(lines.length);
  let n = 0;
  if (query !== query.toLowerCase()) {
    for (let i = 0; i < lines.length; i++) if (lines[i].includes(query)) hits[n++] = i;
  } else {
    const re = new RegExp(escapeRegExp(query), "i");
    for (let i = 0; i < lines.length; i++) if (re.test(lines[i])) hits[n++] = i;
  }
  return hits.slice(0, n);
}

/** Split a line into plain and matching segments for highlighting. */
export function highlight(line: string, query: string): Segment[] {
  if (!query) return [{ text: line, hit: false }];
  const exact = query !== query.toLowerCase();
  const hay = exact ? line : line.toLowerCase();
  const needle = exact ? query : query.toLowerCase();
  const out: Segment[] = [];
  let from = 0;
  for (;;) {
    const i = hay.indexOf(needle, from);
    if (i < 0) break;
    if (i > from) out.push({ text: line.slice(from, i), hit: false });
    out.push({ text: line.slice(i, i + needle.length), hit: true });
    from = i + needle.length;
  }
  if (from < line.length || out.length === 0) out.push({ text: line.slice(from), hit: false });
  return out;
}

/** The first index in sorted `hits` at or after `line` (wrapping), for "next match". */
export function nextHit(hits: Int32Array, line: number): number {
  if (hits.length === 0) return -1;
  let lo = 0;
  let hi = hits.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (hits[mid] < line) lo = mid + 1;
    else hi = mid;
  }
  return lo < hits.length ? lo : 0;
}
