import { describe, expect, it } from "vitest";
import { engineLabel, machinePhaseShort } from "./engine";

describe("the sidebar names the engine", () => {
  it("calls Berth's own engine Built-in, in the app or as a daemon", () => {
    expect(engineLabel("embedded")).toBe("Built-in");
    expect(engineLabel("daemon")).toBe("Built-in");
    expect(engineLabel("machine")).toBe("Virtual machine");
    expect(engineLabel("external")).toBe("External");
    expect(engineLabel(null)).toBe("Not connected");
  });

  it("says when Berth's own engine runs as an ordinary user", () => {
    expect(engineLabel("embedded", true)).toBe("Built-in, rootless");
    expect(engineLabel("daemon", true)).toBe("Built-in, rootless");
    expect(engineLabel("embedded", false)).toBe("Built-in");
    expect(engineLabel("machine", true)).toBe("Virtual machine");
  });

  it("says where a machine that does not answer is", () => {
    expect(machinePhaseShort("starting")).toBe("Starting…");
    expect(machinePhaseShort("applying")).toBe("Starting…");
    expect(machinePhaseShort("stopping")).toBe("Stopping…");
    expect(machinePhaseShort("failed")).toBe("Failed: see Settings");
    expect(machinePhaseShort("missing")).toBe("Stopped");
    expect(machinePhaseShort("stopped")).toBe("Stopped");
    expect(machinePhaseShort(undefined)).toBe("Stopped");
  });
});
