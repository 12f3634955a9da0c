// App-wide state: the current view, what it shows, notices, and the engine status.

import type { UserError } from "./api";

export type View =
  | "dashboard" | "containers" | "compose" | "images" | "volumes" | "logs" | "terminal" | "inspect" | "stats"
  | "pull" | "run" | "build" | "push" | "learn" | "settings";

export interface Notice {
  id: number;
  text: string;
  error?: UserError;
}

export const app = $state({
  view: "dashboard" as View,
  /** The container the Logs / Terminal / Inspect / Stats views show. */
  container: "" as string,
  containerName: "" as string,
  /** Image the Run / Push wizards start from; inspect target for images. */
  image: "" as string,
  inspectKind: "container" as "container" | "image",
  /** A container to scroll to and flash after the Run wizard. */
  highlight: "" as string,
  notices: [] as Notice[],
});

let noticeId = 0;
export function notify(text: string, error?: UserError): void {
  noticeId += 1;
  const id = noticeId;
  app.notices.push({ id, text, error });
  setTimeout(() => dismiss(id), error ? 15000 : 5000);
}

export function dismiss(id: number): void {
  const i = app.notices.findIndex((n) => n.id === id);
  if (i >= 0) app.notices.splice(i, 1);
}

export function go(view: View, opts: { container?: string; name?: string; image?: string } = {}): void {
  if (opts.container !== undefined) app.container = opts.container;
  if (opts.name !== undefined) app.containerName = opts.name;
  if (opts.image !== undefined) app.image = opts.image;
  app.view = view;
}
