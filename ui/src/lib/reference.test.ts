import { describe, expect, it } from "vitest";
import { familiarName, normalizeReference } from "./reference";

describe("normalizeReference", () => {
  it("expands short Docker Hub names like docker does", () => {
    expect(normalizeReference("flask").full).toBe("docker.io/library/flask:latest");
    expect(normalizeReference("user/app").full).toBe("docker.io/user/app:latest");
    expect(normalizeReference("python:3.12-slim").full).toBe("docker.io/library/python:3.12-slim");
  });
  it("keeps registries with ports and localhost, and digests", () => {
    const r = normalizeReference("127.0.0.1:5000/demo/flask");
    expect(r.registry).toBe("127.0.0.1:5000");
    expect(r.full).toBe("127.0.0.1:5000/demo/flask:latest");
    expect(normalizeReference("localhost/x:v1").full).toBe("localhost/x:v1");
    const d = "sha256:" + "a".repeat(64);
    expect(normalizeReference(`busybox@${d}`).full).toBe(`docker.io/library/busybox@${d}`);
  });
  it("says what is wrong with bad input", () => {
    expect(normalizeReference("").ok).toBe(false);
    expect(normalizeReference("Flask").error).toContain("lowercase");
    expect(normalizeReference("flask:bad tag").error).toContain("spaces");
    expect(normalizeReference("a//b").error).toContain("empty part");
    expect(normalizeReference("x@sha256:12").error).toContain("64 hex");
  });
  it("prints the familiar short form", () => {
    expect(familiarName("docker.io/library/flask:latest")).toBe("flask:latest");
    expect(familiarName("docker.io/user/app:1")).toBe("user/app:1");
    expect(familiarName("127.0.0.1:5000/a:1")).toBe("127.0.0.1:5000/a:1");
  });
});
