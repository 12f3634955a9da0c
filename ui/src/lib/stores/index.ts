// The app's resource stores, fed by the engine's events (see feed.ts). Views subscribe
// (`$containers`); none of them owns a timer. One slow safety refresh catches what the
// engine does not announce (a container started by another process on the same root).

import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import { api, asUserError, type ContainerRow, type DiskUsage, type EngineStatus, type ImageRow, type MachineStatus, type VolumeRow } from "../api";
import type { EngineEvent } from "../../generated/EngineEvent";
import { dispatch, type Changeable, type StoreName } from "./feed";
import { ResourceStore } from "./resource";

/** The status the sidebar shows when even asking failed. */
function unreachable(e: unknown): EngineStatus {
  return { connected: false, kind: null, endpoint: "", engine: "", version: "", containers: 0, running: 0, images: 0, error: asUserError(e), choice: "built_in", rootless: false };
}

/** Every container, stopped ones too; views filter (see `isUp`). */
export const containers = new ResourceStore<ContainerRow[]>(() => api.listContainers(true), asUserError);
export const images = new ResourceStore<ImageRow[]>(() => api.listImages(), asUserError);
export const volumes = new ResourceStore<VolumeRow[]>(() => api.listVolumes(), asUserError);
/** Never fails: an unreachable engine is a status too. */
export const engine = new ResourceStore<EngineStatus>(() => api.engineStatus().catch(unreachable), asUserError);
/** `/system/df` walks the store: reloaded at most once a second. */
export const disk = new ResourceStore<DiskUsage>(() => api.diskUsage(), asUserError, 1000);

/**
 * Berth's virtual machine (Settings → Engine). Not an engine resource: the backend emits
 * its whole status as `machine-status` whenever it changes (every second while it starts).
 */
export const machine = new ResourceStore<MachineStatus>(() => api.machineStatus(), asUserError);

export const stores: Record<StoreName, Changeable> = { containers, images, volumes, engine, disk };

/** What `docker ps` without `-a` lists. */
export function isUp(c: ContainerRow): boolean {
  return c.state === "running" || c.state === "paused" || c.state === "restarting";
}

export const SAFETY_REFRESH_MS = 30_000;

/** Start listening to the engine's events; call once, at start-up. */
export async function startFeed(): Promise<UnlistenFn> {
  const unlisten = await listen<EngineEvent>("engine-event", (e) => dispatch(stores, e.payload));
  const unlistenMachine = await listen<MachineStatus>("machine-status", (e) => {
    machine.set(e.payload);
    // Its phase decides what the sidebar says while the window's engine is the machine.
    engine.changed();
  });
  const safety = setInterval(() => {
    for (const s of Object.values(stores)) s.changed();
  }, SAFETY_REFRESH_MS);
  return () => {
    unlisten();
    unlistenMachine();
    clearInterval(safety);
  };
}
