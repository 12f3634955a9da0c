// One resource the engine has (its containers, its images …) as a Svelte store: views
// subscribe, nobody polls. Engine events mark it changed (debounced: a burst of events
// is one reload); an action the user just took can reload it at once.

import type { UserError } from "../../generated/UserError";

export interface Snapshot<T> {
  /** The last value loaded (kept while a reload runs or after one failed). */
  value: T | null;
  /** Why the last load failed; null once one succeeded. */
  error: UserError | null;
  /** A load has succeeded at least once. */
  loaded: boolean;
}

/** setTimeout / clearTimeout, replaceable in tests. */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class ResourceStore<T> {
  private snap: Snapshot<T> = { value: null, error: null, loaded: false };
  private readonly subscribers = new Set<(s: Snapshot<T>) => void>();
  private timer: unknown = null;
  private inflight: Promise<void> | null = null;
  private again = false;

  /**
   * `load` fetches the value (through the Tauri commands); `toError` turns what it threw
   * into a UserError. Events within `debounceMs` of the first one cause one reload.
   */
  constructor(
    private readonly load: () => Promise<T>,
    private readonly toError: (e: unknown) => UserError,
    readonly debounceMs = 200,
    private readonly timers: Timers = realTimers,
  ) {}

  /** Svelte's store contract (`$store` in components). The first subscriber loads it. */
  subscribe(run: (s: Snapshot<T>) => void): () => void {
    const first = this.subscribers.size === 0;
    this.subscribers.add(run);
    run(this.snap);
    if (first) void this.reload();
    return () => {
      this.subscribers.delete(run);
    };
  }

  get current(): Snapshot<T> {
    return this.snap;
  }

  /** Someone shows it now. */
  get watched(): boolean {
    return this.subscribers.size > 0;
  }

  /**
   * The engine says it changed: reload within `debounceMs`, once for the whole burst.
   * Unwatched, nothing happens (the next subscriber loads it anyway).
   */
  changed(): void {
    if (!this.watched || this.timer !== null) return;
    this.timer = this.timers.set(() => {
      this.timer = null;
      void this.reload();
    }, this.debounceMs);
  }

  /** Load now (after an action of the user's); resolves when the list is current. */
  reload(): Promise<void> {
    if (this.timer !== null) {
      this.timers.clear(this.timer);
      this.timer = null;
    }
    if (this.inflight) {
      // What the running load returns may predate the change: load once more after it.
      this.again = true;
      return this.inflight;
    }
    this.inflight = this.run();
    return this.inflight;
  }

  /** A value known without asking (a command's answer that is the whole state). */
  set(value: T): void {
    this.publish({ value, error: null, loaded: true });
  }

  private async run(): Promise<void> {
    try {
      do {
        this.again = false;
        try {
          this.publish({ value: await this.load(), error: null, loaded: true });
        } catch (e) {
          this.publish({ ...this.snap, error: this.toError(e) });
        }
      } while (this.again);
    } finally {
      this.inflight = null;
    }
  }

  private publish(s: Snapshot<T>): void {
    this.snap = s;
    for (const run of [...this.subscribers]) run(s);
  }
}
