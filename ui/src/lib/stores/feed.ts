// Which stores an engine event makes stale. The backend subscribes to the engine's
// `/events` once and passes each event on as `engine-event` (src-tauri/src/events.rs).

import type { EngineEvent } from "../../generated/EngineEvent";

export type StoreName = "containers" | "images" | "volumes" | "engine" | "disk";
export const ALL_STORES: readonly StoreName[] = ["containers", "images", "volumes", "engine", "disk"];

/**
 * Container actions that change nothing a list shows (exec sessions, attach, copies) —
 * and `create`: a start follows it at once, and Berth's engine (as of this writing) fails
 * that start when a list or `/info` runs meanwhile (its state refresh removes the new
 * container's cgroup). A container created and never started shows at the next event or
 * the safety refresh.
 */
const QUIET_CONTAINER_ACTIONS = new Set(["create", "attach", "detach", "resize", "top", "archive-path", "extract-to-dir", "export", "copy"]);

export function affected(ev: EngineEvent): readonly StoreName[] {
  switch (ev.type) {
    case "connected":
      return ALL_STORES;
    case "lost":
      return ["engine"];
    case "changed":
      switch (ev.resource) {
        case "container":
          if (ev.action.startsWith("exec_") || ev.action.startsWith("health_status") || QUIET_CONTAINER_ACTIONS.has(ev.action)) return [];
          // The engine's running count; volumes list who uses them; df counts containers.
          return ["containers", "engine", "volumes", "disk"];
        case "image":
          if (ev.action === "push" || ev.action === "save") return [];
          return ["images", "engine", "disk"];
        case "volume":
          return ["volumes", "disk"];
        case "network":
          return [];
        case "other":
          // Builder prunes and the like: the build cache line of the disk usage.
          return ["disk"];
      }
  }
}

export interface Changeable {
  changed(): void;
}

/** Mark the stores an event affects as changed. */
export function dispatch(stores: Record<StoreName, Changeable>, ev: EngineEvent): void {
  for (const name of affected(ev)) stores[name].changed();
}
