import { describe, expect, it } from "vitest";
import { childPath, crumbs, parentPath } from "./volpath";

describe("volume browser paths", () => {
  it("joins a child onto the root and onto folders", () => {
    expect(childPath("/", "a")).toBe("/a");
    expect(childPath("/a", "b c")).toBe("/a/b c");
    expect(childPath("/a/", "b")).toBe("/a/b");
  });
  it("goes up one folder, never above the root", () => {
    expect(parentPath("/a/b")).toBe("/a");
    expect(parentPath("/a")).toBe("/");
    expect(parentPath("/")).toBe("/");
  });
  it("lists the breadcrumb from the root", () => {
    expect(crumbs("/")).toEqual([{ name: "/", path: "/" }]);
    expect(crumbs("/a/b")).toEqual([
      { name: "/", path: "/" },
      { name: "a", path: "/a" },
      { name: "b", path: "/a/b" },
    ]);
  });
});
