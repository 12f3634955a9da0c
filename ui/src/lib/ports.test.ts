import { describe, expect, it } from "vitest";
import { parseExposed, suggestHostPort, validPort } from "./ports";

describe("port suggestion", () => {
  it("keeps an unprivileged port when free", () => {
    expect(suggestHostPort(5000, new Set())).toBe(5000);
  });
  it("maps privileged ports to 8000+port", () => {
    expect(suggestHostPort(80, new Set())).toBe(8080);
  });
  it("skips ports already published", () => {
    expect(suggestHostPort(5000, new Set([5000, 5001]))).toBe(5002);
    expect(suggestHostPort(65535, new Set([65535]))).toBe(1024);
  });
  it("parses EXPOSE keys", () => {
    expect(parseExposed("5000/tcp")).toEqual({ port: 5000, protocol: "tcp" });
    expect(parseExposed("53/udp")).toEqual({ port: 53, protocol: "udp" });
    expect(parseExposed("x/tcp")).toBeNull();
    expect(validPort(0)).toBe(false);
    expect(validPort(443)).toBe(true);
  });
});
