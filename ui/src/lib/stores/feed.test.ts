import { describe, expect, it } from "vitest";
import { affected, ALL_STORES, dispatch, type StoreName } from "./feed";
import type { EngineEvent } from "../../generated/EngineEvent";

const container = (action: string): EngineEvent => ({ type: "changed", resource: "container", action, id: "c1" });

describe("engine events refresh the stores they concern", () => {
  it("container start, stop and die refresh the running count and the list", () => {
    for (const action of ["start", "stop", "die", "destroy", "pause", "unpause"]) {
      expect(affected(container(action))).toContain("engine");
      expect(affected(container(action))).toContain("containers");
    }
  });

  it("exec sessions and health checks refresh nothing", () => {
    expect(affected(container("exec_create"))).toEqual([]);
    expect(affected(container("exec_die"))).toEqual([]);
    expect(affected(container("health_status: healthy"))).toEqual([]);
    expect(affected(container("archive-path"))).toEqual([]);
    // Not while its start runs (see feed.ts).
    expect(affected(container("create"))).toEqual([]);
  });

  it("images, volumes and the rest go to their own stores", () => {
    expect(affected({ type: "changed", resource: "image", action: "pull", id: "flask" })).toEqual(["images", "engine", "disk"]);
    expect(affected({ type: "changed", resource: "image", action: "push", id: "flask" })).toEqual([]);
    expect(affected({ type: "changed", resource: "volume", action: "create", id: "data" })).toEqual(["volumes", "disk"]);
    expect(affected({ type: "changed", resource: "other", action: "prune", id: "" })).toEqual(["disk"]);
  });

  it("a (re)connected feed refreshes everything; a lost one the engine status", () => {
    expect(affected({ type: "connected" })).toEqual(ALL_STORES);
    expect(affected({ type: "lost" })).toEqual(["engine"]);
  });

  it("dispatch marks exactly the affected stores", () => {
    const hits: StoreName[] = [];
    const stores = Object.fromEntries(ALL_STORES.map((n) => [n, { changed: () => void hits.push(n) }])) as unknown as Record<StoreName, { changed(): void }>;
    dispatch(stores, container("die"));
    expect(hits.sort()).toEqual(["containers", "disk", "engine", "volumes"]);
  });
});
