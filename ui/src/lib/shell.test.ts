import { describe, expect, it } from "vitest";
import { buildCommand, pullCommand, pushCommands, runCommand, shellQuote, splitWords } from "./shell";

describe("command preview", () => {
  it("quotes only what needs quoting", () => {
    expect(shellQuote("flask:latest")).toBe("flask:latest");
    expect(shellQuote("hello world")).toBe("'hello world'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
  });
  it("builds docker pull with a platform", () => {
    expect(pullCommand("flask", "")).toBe("docker pull flask");
    expect(pullCommand("flask", "linux/arm64")).toBe("docker pull --platform linux/arm64 flask");
  });
  it("builds docker run from the wizard fields", () => {
    const cmd = runCommand({
      image: "flask",
      name: "web",
      ports: [
        { host: 8080, container: 5000, protocol: "tcp" },
        { host: null, container: 53, protocol: "udp" },
        { host: 5353, container: 53, protocol: "udp" },
      ],
      env: ["GREETING=hello world"],
      volumes: ["data:/data"],
      command: [],
    });
    expect(cmd).toBe("docker run -d --name web -p 8080:5000 -p 5353:53/udp -e 'GREETING=hello world' -v data:/data flask");
  });
  it("builds docker build and push", () => {
    expect(buildCommand({ dir: "/src/app", dockerfile: "", tag: "app:1", args: [{ key: "V", value: "2" }] })).toBe(
      "docker build -t app:1 --build-arg V=2 /src/app",
    );
    expect(buildCommand({ dir: "/src/app/", dockerfile: "Dev.Dockerfile", tag: "a", args: [] })).toBe(
      "docker build -f /src/app/Dev.Dockerfile -t a /src/app/",
    );
    expect(pushCommands({ source: "app:1", target: "me/app:1", registry: "docker.io", user: "me", login: true })).toBe(
      "docker login -u me\ndocker tag app:1 me/app:1\ndocker push me/app:1",
    );
  });
  it("splits a typed command into words", () => {
    expect(splitWords(`sh -c "echo hi there" ''`)).toEqual(["sh", "-c", "echo hi there", ""]);
  });
});
