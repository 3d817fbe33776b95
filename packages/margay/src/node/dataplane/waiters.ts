/**
 * Which WorkloadEndpoint revisions the driver has applied, and the callers waiting for one. The workload
 * API answers a CNI ADD only once the pod's endpoint is programmed, so a pod never runs unpoliced.
 *
 * @packageDocumentation
 */
import { PipelineError, PipelineErrorCode } from "./errors.js";

/** Compares two datastore revisions: numerically when both are decimal (etcd's), else as text. */
export function compareRevisions(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** One endpoint change of an applied batch: the syncer's revision and whether it was a deletion. */
export interface EndpointChange {
  readonly revision: string;
  readonly deleted: boolean;
}

interface Waiter {
  readonly key: string;
  readonly revision: string;
  readonly deleted: boolean;
  readonly resolve: () => void;
  readonly reject: (e: unknown) => void;
  readonly cleanup: () => void;
}

/** The applied endpoint state and its waiters. */
export interface EndpointWaiters {
  /** Records the endpoint changes of a batch the driver applied and resolves the waiters it satisfies. */
  applied(changes: ReadonlyMap<string, EndpointChange>): void;
  /** Marks the first in-sync as applied: nothing resolves before it. */
  markInSync(): void;
  /** See `DataplanePipeline.waitForEndpoint`. */
  wait(
    key: string,
    revision: string,
    options?: { readonly deleted?: boolean | undefined; readonly signal?: AbortSignal | undefined },
  ): Promise<void>;
  /** Rejects every waiter (and every later wait) with `error`. */
  close(error: PipelineError): void;
  /** Waiters pending (tests, metrics). */
  readonly pending: number;
}

/** Creates the applied-endpoint bookkeeping. */
export function createEndpointWaiters(): EndpointWaiters {
  // Present endpoints only: a deleted one is known absent once the watermark passed its deletion.
  const present = new Map<string, string>();
  // Highest WorkloadEndpoint revision applied: every endpoint change up to it has been programmed, since
  // the syncer delivers one kind's changes in revision order.
  let watermark: string | undefined;
  let inSync = false;
  let closed: PipelineError | undefined;
  const waiters = new Set<Waiter>();

  const reached = (revision: string) => watermark !== undefined && compareRevisions(watermark, revision) >= 0;

  const satisfied = (w: Pick<Waiter, "key" | "revision" | "deleted">): boolean => {
    if (!inSync) return false;
    const at = present.get(w.key);
    if (w.deleted) return at === undefined && reached(w.revision);
    if (at !== undefined) return compareRevisions(at, w.revision) >= 0;
    // Absent although everything up to `revision` is applied: it was programmed and removed since.
    return reached(w.revision);
  };

  const settle = () => {
    for (const w of waiters) {
      if (satisfied(w)) {
        waiters.delete(w);
        w.cleanup();
        w.resolve();
      }
    }
  };

  return {
    applied(changes) {
      for (const [key, change] of changes) {
        if (change.deleted) present.delete(key);
        else present.set(key, change.revision);
        if (watermark === undefined || compareRevisions(change.revision, watermark) > 0)
          watermark = change.revision;
      }
      settle();
    },
    markInSync() {
      inSync = true;
      settle();
    },
    wait(key, revision, options = {}) {
      if (typeof key !== "string" || key === "" || !key.includes("/")) {
        return Promise.reject(
          new PipelineError(PipelineErrorCode.InvalidOptions, "endpoint key must be <namespace>/<name>", {
            key,
            field: "key",
          }),
        );
      }
      if (typeof revision !== "string" || revision === "") {
        return Promise.reject(
          new PipelineError(PipelineErrorCode.InvalidOptions, "revision must be a non-empty string", {
            key,
            field: "revision",
          }),
        );
      }
      if (closed !== undefined) return Promise.reject(closed);
      const signal = options.signal;
      const deleted = options.deleted === true;
      if (signal?.aborted) return Promise.reject(aborted(key, signal));
      if (satisfied({ key, revision, deleted })) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          waiters.delete(waiter);
          reject(aborted(key, signal));
        };
        const waiter: Waiter = {
          key,
          revision,
          deleted,
          resolve,
          reject,
          cleanup: () => signal?.removeEventListener("abort", onAbort),
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        waiters.add(waiter);
      });
    },
    close(error) {
      closed ??= error;
      for (const w of waiters) {
        w.cleanup();
        w.reject(error);
      }
      waiters.clear();
    },
    get pending() {
      return waiters.size;
    },
  };
}

function aborted(key: string, signal: AbortSignal | undefined): PipelineError {
  return new PipelineError(
    PipelineErrorCode.Aborted,
    "wait for endpoint aborted",
    { key },
    { cause: signal?.reason },
  );
}
