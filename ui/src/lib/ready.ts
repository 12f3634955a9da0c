// Tells the backend when a view first shows real data, so the benchmark can time
// "launch → containers list rendered" from process start (see scripts/bench-desktop.sh).

import { invoke } from "@tauri-apps/api/core";

const reported = new Set<string>();

export function reportReady(view: string): void {
  if (reported.has(view)) return;
  reported.add(view);
  // After the paint that shows the rows, not before.
  requestAnimationFrame(() => setTimeout(() => invoke("view_ready", { view }).catch(() => {}), 0));
}
