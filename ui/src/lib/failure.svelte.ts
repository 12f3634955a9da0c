// A wizard's error, bound to the inputs it came from (see failure.ts): shown while they
// are unchanged, cleared for good as soon as one is edited.

import { untrack } from "svelte";
import type { UserError } from "../generated/UserError";
import { shownError, stillCurrent, type Failure } from "./failure";

export interface FailureSlot {
  /** The error to show now (null once the inputs were edited). */
  readonly error: UserError | null;
  /** The inputs key now: take it when a request starts, pass it to `fail`. */
  readonly inputs: string;
  /** Record a failure of the request made with `at` (default: the inputs now). */
  fail(error: UserError, at?: string): void;
  clear(): void;
}

/** Call during component set-up; `inputs` returns the wizard's `inputsKey(...)`. */
export function failureFor(inputs: () => string): FailureSlot {
  let failure = $state<Failure | null>(null);
  $effect(() => {
    const now = inputs();
    untrack(() => (failure = stillCurrent(failure, now)));
  });
  return {
    get error() {
      return shownError(failure, inputs());
    },
    get inputs() {
      return inputs();
    },
    fail(error: UserError, at?: string) {
      failure = { error, inputs: at ?? inputs() };
    },
    clear() {
      failure = null;
    },
  };
}
