import { describe, expect, it } from "vitest";
import { inputsKey, shownError, stillCurrent, type Failure } from "./failure";
import type { UserError } from "../generated/UserError";

const offline: UserError = {
  kind: "registry_unreachable",
  message: "Docker Hub can't be reached: its address could not be looked up.",
  next_step: "Check the internet connection, or set a registry mirror in Settings.",
  details: "failed to lookup address information: Name or service not known",
  action: "open_settings",
};

describe("an error belongs to the inputs it came from", () => {
  const at = inputsKey("flask", "");
  const failure: Failure = { error: offline, inputs: at };

  it("is shown while the inputs are unchanged", () => {
    expect(shownError(failure, inputsKey("flask", ""))).toBe(offline);
    expect(stillCurrent(failure, at)).toBe(failure);
  });

  it("goes away when the reference or another input is edited", () => {
    expect(shownError(failure, inputsKey("flasks", ""))).toBeNull();
    expect(shownError(failure, inputsKey("flask", "linux/arm64"))).toBeNull();
    expect(stillCurrent(failure, inputsKey("flas", ""))).toBeNull();
  });

  it("tells list contents apart, not just lengths", () => {
    const ports = (host: number) => inputsKey("web", [{ host, container: 5000 }]);
    const busy: Failure = { error: { ...offline, kind: "port_in_use" }, inputs: ports(8080) };
    expect(shownError(busy, ports(8080))).not.toBeNull();
    expect(shownError(busy, ports(8081))).toBeNull();
  });

  it("shows nothing without a failure", () => {
    expect(shownError(null, at)).toBeNull();
  });
});
