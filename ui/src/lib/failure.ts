// An error shown in a wizard belongs to the inputs it came from. Once the user edits
// them, it no longer says what the button would do now, so it goes away (and stays
// away: editing back does not bring an old error back — pressing the button again does).

import type { UserError } from "../generated/UserError";

export interface Failure {
  error: UserError;
  /** The inputs key (see `inputsKey`) at the time of the request that failed. */
  inputs: string;
}

/** A wizard's inputs, as one key that changes whenever any of them does. */
export function inputsKey(...parts: unknown[]): string {
  return JSON.stringify(parts);
}

/** The failure still current for `inputs`, or null once they were edited. */
export function stillCurrent(failure: Failure | null, inputs: string): Failure | null {
  return failure && failure.inputs === inputs ? failure : null;
}

/** What a wizard offers for an error, decided by its code alone (never its words). */
export type Remedy = "pull_first" | "another_port" | "another_name" | "log_in" | null;

export function remedy(error: UserError): Remedy {
  switch (error.code) {
    case "image_not_found":
      return "pull_first";
    case "port_in_use":
      return "another_port";
    case "name_in_use":
      return "another_name";
    case "auth_required":
      return "log_in";
    default:
      return null;
  }
}

/** The error a wizard shows for its current inputs. */
export function shownError(failure: Failure | null, inputs: string): UserError | null {
  return stillCurrent(failure, inputs)?.error ?? null;
}
