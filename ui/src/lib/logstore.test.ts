import { describe, expect, it } from "vitest";
import { highlight, LogStore, nextHit, searchLines } from "./logstore";

describe("log search", () => {
  it("finds lines with smart case", () => {
    const lines = ["GET / 200", "error: boom", "Error: Boom", "ok"];
    expect(Array.from(searchLines(lines, "error"))).toEqual([1, 2]);
    expect(Array.from(searchLines(lines, "Error"))).toEqual([2]);
    expect(Array.from(searchLines(lines, "a.b"))).toEqual([]);
    expect(searchLines(lines, "").length).toBe(0);
  });
  it("highlights every match in a line", () => {
    expect(highlight("abcABCabc", "abc")).toEqual([
      { text: "abc", hit: true },
      { text: "ABC", hit: true },
      { text: "abc", hit: true },
    ]);
    expect(highlight("x [y] z", "[y]")).toEqual([
      { text: "x ", hit: false },
      { text: "[y]", hit: true },
      { text: " z", hit: false },
    ]);
  });
  it("appends column-wise batches", () => {
    const store = new LogStore();
    store.appendColumns("a\nb c\n", "t1\nt2\nt3", "010", 3);
    expect(store.text).toEqual(["a", "b c", ""]);
    expect(store.ts).toEqual(["t1", "t2", "t3"]);
    expect(store.stderr).toEqual([false, true, false]);
  });
  it("jumps to the next hit, wrapping around", () => {
    const hits = new Int32Array([3, 10, 20]);
    expect(nextHit(hits, 0)).toBe(0);
    expect(nextHit(hits, 11)).toBe(2);
    expect(nextHit(hits, 21)).toBe(0);
  });
  it("searches a million lines", () => {
    const store = new LogStore();
    const batch = [];
    for (let i = 0; i < 1_000_000; i++) batch.push({ text: `line ${i} GET /item/${i % 997}`, ts: "", stderr: i % 10 === 0 });
    store.append(batch);
    const t0 = performance.now();
    const hits = store.search("/item/996");
    const ms = performance.now() - t0;
    expect(hits.length).toBe(Math.floor(1_000_000 / 997));
    expect(hits[0]).toBe(996);
    console.log(`searched 1,000,000 lines in ${ms.toFixed(1)} ms`);
  });
});
