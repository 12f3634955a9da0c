// How the sidebar names the engine that runs, and the machine's phase in a word or two.
// Pure: tested in engine.test.ts.

import type { EndpointKind } from "../generated/EndpointKind";
import type { MachinePhase } from "../generated/MachinePhase";

/** "Built-in" / "Built-in, rootless" / "Virtual machine" / "External", as src-tauri's
 * tray says it. `rootless`: the engine runs as an ordinary user (its `info` says so). */
export function engineLabel(kind: EndpointKind | null, rootless = false): string {
  switch (kind) {
    case "embedded":
    case "daemon":
      return rootless ? "Built-in, rootless" : "Built-in";
    case "machine":
      return "Virtual machine";
    case "external":
      return "External";
    default:
      return "Not connected";
  }
}

/** The sidebar's line under "Virtual machine" while its engine does not answer. */
export function machinePhaseShort(phase: MachinePhase | undefined): string {
  switch (phase) {
    case "starting":
    case "applying":
      return "Starting…";
    case "stopping":
      return "Stopping…";
    case "failed":
      return "Failed: see Settings";
    case "running":
      return "Connecting…";
    default:
      return "Stopped";
  }
}
