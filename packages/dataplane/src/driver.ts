import type { Logger } from "@margay/api";
import type { ProgrammedRoute } from "./routes/plan.js";
import type { DataplaneUpdate } from "./stream.js";

/** Options of a driver call. */
export interface DriverCallOptions {
  /** Aborts the call; the driver stays usable and the next batch or reconcile repairs partial work. */
  readonly signal?: AbortSignal | undefined;
}

/** Outcome of {@link DataplaneDriver.apply}. */
export interface ApplyResult {
  /** Whether the driver has seen the in-sync barrier (now or earlier). */
  readonly inSync: boolean;
  /** Whether this call changed (or verified) the kernel; always false before the first in-sync. */
  readonly programmed: boolean;
  /** Things the driver could not do but that are not errors (e.g. an unresolvable next hop). */
  readonly warnings: readonly string[];
}

/** A remote VTEP as programmed (neighbour + FDB entry). */
export interface ProgrammedVtep {
  /** Tunnel address. */
  readonly address: string;
  /** VTEP MAC. */
  readonly mac: string;
  /** Underlay address. */
  readonly underlay: string;
}

/** An IP set as programmed. */
export interface ProgrammedIpSet {
  /** Set id from the policy calculation. */
  readonly id: string;
  /** Members, sorted. */
  readonly members: readonly string[];
}

/**
 * What a driver has programmed, in a normalised form every driver can produce. The conformance suite
 * compares these. The Linux driver reads routes and VTEPs back from the kernel; IP sets, policies and
 * endpoints are those of the last nftables transaction the kernel accepted (after a rejected one they
 * leave out what the kernel refused, until a later transaction carries it in).
 */
export interface DataplaneSnapshot {
  /** Whether the in-sync barrier has been seen. */
  readonly inSync: boolean;
  /** Routes we own, sorted by dst. */
  readonly routes: readonly ProgrammedRoute[];
  /** Remote VTEPs, sorted by address. */
  readonly vteps: readonly ProgrammedVtep[];
  /** IP sets, sorted by id. */
  readonly ipSets: readonly ProgrammedIpSet[];
  /** Active policy ids, sorted. */
  readonly policies: readonly string[];
  /** Local endpoints as `id → interface`, sorted by id. */
  readonly endpoints: readonly { readonly id: string; readonly ifname: string }[];
  /** Pools with masquerade on, sorted. */
  readonly natPools: readonly string[];
}

/**
 * The dataplane seam: consumes the ordered update stream and programs a dataplane.
 *
 * Contract (checked by `@margay/dataplane/testing`):
 * - batches are applied in call order; a batch is validated whole before anything is applied, and an
 *   invalid one is rejected with `invalid-update` and leaves the model unchanged;
 * - nothing is programmed before the first `in-sync`; a batch containing it is programmed whole;
 * - applying the same state twice changes nothing; removes of unknown keys are no-ops;
 * - after `close()`, calls reject with `closed`.
 */
export interface DataplaneDriver {
  /** Applies one batch of updates. */
  apply(updates: readonly DataplaneUpdate[], options?: DriverCallOptions): Promise<ApplyResult>;
  /** Reports what is programmed. */
  snapshot(options?: DriverCallOptions): Promise<DataplaneSnapshot>;
  /** Stops timers and releases resources; leaves the kernel state in place (a restart adopts it). */
  close(): Promise<void>;
  /** Same as {@link DataplaneDriver.close}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** A promise chain that runs tasks one at a time: one serialized event loop per driver. */
export function createSerialQueue(): <T>(task: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task, task);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** Logs a batch a driver refused (`error`, "dataplane batch rejected"): its size and the error's code. */
export function logRejectedBatch(log: Logger, updates: unknown, e: unknown): void {
  const { code, retryable, message } = e as { code?: unknown; retryable?: unknown; message?: unknown };
  log.error(
    { updates: Array.isArray(updates) ? updates.length : undefined, code, retryable, error: message },
    "dataplane batch rejected",
  );
}
