import { describe, expect, it } from "vitest";
import { ResourceStore, type Snapshot, type Timers } from "./resource";
import type { UserError } from "../../generated/UserError";

/** Timers that fire only when the test says so. */
function manualTimers() {
  const pending = new Map<number, () => void>();
  let next = 0;
  const timers: Timers = {
    set(fn) {
      next += 1;
      pending.set(next, fn);
      return next;
    },
    clear(h) {
      pending.delete(h as number);
    },
  };
  return {
    timers,
    get pending() {
      return pending.size;
    },
    fire() {
      const fns = [...pending.values()];
      pending.clear();
      for (const fn of fns) fn();
    },
  };
}

const toError = (e: unknown): UserError => ({ code: "other", message: String(e), next_step: "", details: "" });
const settle = () => new Promise((r) => setTimeout(r, 0));

function counting(values: number[] = []) {
  let calls = 0;
  const load = async () => {
    calls += 1;
    return values[calls - 1] ?? calls;
  };
  return { load, get calls() { return calls; } };
}

/** A store over `counting()`, with one subscriber, its first load done. */
async function watchedCounter() {
  const src = counting();
  const t = manualTimers();
  const store = new ResourceStore(src.load, toError, 200, t.timers);
  store.subscribe(() => {});
  await settle();
  return { src, t, store };
}

describe("a resource store", () => {
  it("loads when the first view subscribes, not before", async () => {
    const src = counting();
    const t = manualTimers();
    const store = new ResourceStore(src.load, toError, 200, t.timers);
    await settle();
    expect(src.calls).toBe(0);
    const seen: Snapshot<number>[] = [];
    const stop = store.subscribe((s) => seen.push(s));
    await settle();
    expect(src.calls).toBe(1);
    expect(seen.at(-1)).toEqual({ value: 1, error: null, loaded: true });
    // A second subscriber shares it.
    store.subscribe(() => {});
    await settle();
    expect(src.calls).toBe(1);
    stop();
  });

  it("turns a burst of events into one reload after the debounce", async () => {
    const { src, t, store } = await watchedCounter();
    store.changed();
    store.changed();
    store.changed();
    expect(t.pending).toBe(1);
    expect(src.calls).toBe(1);
    t.fire();
    await settle();
    expect(src.calls).toBe(2);
    expect(store.current.value).toBe(2);
  });

  it("ignores events while nobody watches, and reloads on the next subscription", async () => {
    const src = counting();
    const t = manualTimers();
    const store = new ResourceStore(src.load, toError, 200, t.timers);
    const stop = store.subscribe(() => {});
    await settle();
    stop();
    store.changed();
    expect(t.pending).toBe(0);
    store.subscribe(() => {});
    await settle();
    expect(src.calls).toBe(2);
  });

  it("reloads once more when a change arrives during a load", async () => {
    let release: () => void = () => {};
    let calls = 0;
    const load = () => {
      calls += 1;
      const n = calls;
      return new Promise<number>((r) => (release = () => r(n)));
    };
    const store = new ResourceStore(load, toError, 0, manualTimers().timers);
    store.subscribe(() => {});
    const first = store.reload(); // joins the subscription's load, asks for one more
    release();
    await settle();
    expect(calls).toBe(2);
    release();
    await first;
    expect(store.current.value).toBe(2);
  });

  it("an immediate reload replaces a pending debounced one", async () => {
    const { src, t, store } = await watchedCounter();
    store.changed();
    await store.reload();
    expect(t.pending).toBe(0);
    expect(src.calls).toBe(2);
  });

  it("keeps the last value when a load fails, with the error", async () => {
    let fail = false;
    const store = new ResourceStore(async () => {
      if (fail) throw "engine gone";
      return [1, 2];
    }, toError, 0, manualTimers().timers);
    store.subscribe(() => {});
    await settle();
    fail = true;
    await store.reload();
    expect(store.current.value).toEqual([1, 2]);
    expect(store.current.error?.message).toBe("engine gone");
    fail = false;
    await store.reload();
    expect(store.current.error).toBeNull();
  });
});
