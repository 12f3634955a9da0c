import { describe, expect, it } from "vitest";
import { inputsKey, remedy, shownError, stillCurrent, type Failure } from "./failure";
import type { UserError } from "../generated/UserError";

const offline: UserError = {
  code: "registry_unreachable",
  registry: "docker.io",
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
    const busy: Failure = { error: { code: "port_in_use", message: "That host port is already used.", next_step: "", details: "" }, inputs: ports(8080) };
    expect(shownError(busy, ports(8080))).not.toBeNull();
    expect(shownError(busy, ports(8081))).toBeNull();
  });

  it("shows nothing without a failure", () => {
    expect(shownError(null, at)).toBeNull();
  });
});

describe("what a wizard offers follows the error's code, not its words", () => {
  const error = (code: UserError["code"], message = "Something failed."): UserError =>
    ({ code, message, next_step: "", details: "" }) as UserError;

  it("maps each code to its remedy", () => {
    expect(remedy(error("image_not_found"))).toBe("pull_first");
    expect(remedy(error("port_in_use"))).toBe("another_port");
    expect(remedy(error("name_in_use"))).toBe("another_name");
    expect(remedy(error("auth_required"))).toBe("log_in");
    expect(remedy(offline)).toBeNull();
    expect(remedy(error("not_found"))).toBeNull();
  });

  it("ignores what the sentence says", () => {
    expect(remedy(error("other", "Bind for 0.0.0.0:8080 failed: port is already allocated"))).toBeNull();
    expect(remedy(error("conflict", "unauthorized: authentication required"))).toBeNull();
  });
});
