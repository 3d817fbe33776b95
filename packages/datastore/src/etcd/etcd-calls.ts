/**
 * How one etcd request is made and how its failure is reported: idempotent reads retried with back-off
 * (each attempt may reach another endpoint), writes sent exactly once, every failure mapped to a
 * {@link DatastoreError} — a connection failure gRPC cannot explain is checked for a TLS
 * misconfiguration, and a call the circuit breaker turned away reports the failure that opened it.
 */

import { backoffDelay, type Logger, sleep } from "@margay/api";
import {
  abortedError,
  closedError,
  DatastoreError,
  type DatastoreErrorDetails,
  isDatastoreError,
  tlsError,
  unavailableError,
} from "../errors.js";
import type { Etcd3 } from "etcd3";
import type { ValidationOptions } from "../validation.js";
import type { WatchStream } from "../watch-stream.js";
import { mapEtcdError } from "./etcd-errors.js";
import { BACKEND } from "./etcd-options.js";
import { type DiagnosisTls, diagnoseEndpoint } from "./tls-diagnosis.js";

/** Delays between attempts of an idempotent read: 100 ms, 200 ms, … (no jitter: each may pick another endpoint). */
const READ_RETRY = Object.freeze({ initialMs: 100, maxMs: 2_000, factor: 2, jitter: 0 });

/** A TLS diagnosis: running while `settledAt` is undefined. */
interface Diagnosis {
  settledAt: number | undefined;
  result: Promise<DatastoreError | undefined>;
}

/** What {@link EtcdCalls} needs to know of its datastore. */
export interface EtcdCallsOptions {
  endpoints: readonly string[];
  tls: DiagnosisTls | undefined;
  diagnoseTimeoutMs: number;
  readAttempts: number;
  log: Logger;
  /** True once the datastore is closed: every failure is then reported `closed`. */
  isClosed: () => boolean;
}

/** Makes reads and writes and classifies their failures; holds the last connection-level failure. */
export class EtcdCalls {
  readonly #o: EtcdCallsOptions;
  /** The last connection-level failure, for calls the circuit breaker turns away without trying. */
  #lastFailure: DatastoreError | undefined;
  /** The last diagnosis: shared while it runs, and for a second after it settled. */
  #diagnosis: Diagnosis | undefined;

  constructor(options: EtcdCallsOptions) {
    this.#o = options;
  }

  /** An idempotent read: retried on connection failures (each attempt may pick another endpoint). */
  async read<R>(call: () => Promise<R>, signal: AbortSignal | undefined, details: DatastoreErrorDetails) {
    const attempts = this.#o.readAttempts;
    let lastError: unknown;
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        // An abort ends the wait early; the call below then fails `aborted`.
        await sleep(backoffDelay(attempt - 1, READ_RETRY), signal).catch(() => {});
      }
      try {
        return await withSignal(call(), signal);
      } catch (e) {
        const mapped = await this.classify(e, details);
        if (!mapped.retryable || mapped.code === "conflict" || signal?.aborted) throw mapped;
        lastError = mapped;
        if (attempt + 1 < attempts) {
          this.#o.log.warn(
            { ...details, attempt: attempt + 1, code: mapped.code },
            "etcd read failed; retrying",
          );
        }
      }
    }
    throw lastError;
  }

  /** A write: sent once; if its outcome is unknown the caller gets `unavailable` and must re-read. */
  async write<R>(call: () => Promise<R>, signal: AbortSignal | undefined, details: DatastoreErrorDetails) {
    try {
      return await withSignal(call(), signal);
    } catch (e) {
      throw await this.classify(e, details);
    }
  }

  /**
   * Maps a failure to a {@link DatastoreError}. A connection failure gRPC cannot explain is checked for a
   * TLS misconfiguration; a call the circuit breaker turned away reports the failure that opened it.
   */
  async classify(e: unknown, details: DatastoreErrorDetails): Promise<DatastoreError> {
    if (this.#o.isClosed()) return closedError({ backend: BACKEND });
    if (isBrokenCircuit(e)) {
      const last = this.#lastFailure;
      if (last === undefined) {
        return unavailableError(
          "etcd unavailable: circuit breaker is open",
          { ...details, backend: BACKEND },
          e,
        );
      }
      return new DatastoreError(last.code, `${last.message} (circuit breaker is open)`, {
        details: { ...last.details, ...details },
        cause: last,
        retryable: last.retryable,
      });
    }
    let mapped = mapEtcdError(e, details);
    if (mapped.code === "unavailable" && isConnectionFailure(e)) {
      const tls = await this.#diagnose();
      if (tls !== undefined) {
        mapped = new DatastoreError(tls.code, tls.message, {
          details: { ...tls.details, ...details },
          cause: e,
          retryable: false,
        });
      }
    }
    if (mapped.code === "unavailable" || mapped.code === "tls") this.#lastFailure = mapped;
    if (this.#o.isClosed()) return closedError({ backend: BACKEND });
    return mapped;
  }

  /**
   * One TLS handshake per endpoint, the first misconfiguration found, if any. Calls failing meanwhile, or
   * within a second after, share it: one set of handshakes at a time, however long one takes to time out.
   */
  #diagnose(): Promise<DatastoreError | undefined> {
    const last = this.#diagnosis;
    if (last !== undefined && (last.settledAt === undefined || Date.now() - last.settledAt < 1_000)) {
      return last.result;
    }
    const { endpoints, tls, diagnoseTimeoutMs } = this.#o;
    const result = Promise.all(endpoints.map((ep) => diagnoseEndpoint(ep, tls, diagnoseTimeoutMs))).then(
      (all) => {
        const d = all.find((x) => x !== undefined);
        if (d === undefined) return undefined;
        return tlsError(`etcd TLS failure at ${d.endpoint}: ${d.description}`, {
          reason: d.reason,
          endpoint: d.endpoint,
          backend: BACKEND,
        });
      },
    );
    const entry: Diagnosis = { settledAt: undefined, result };
    // diagnoseEndpoint never rejects, so neither does `result`.
    void result.then(() => {
      entry.settledAt = Date.now();
    });
    this.#diagnosis = entry;
    return result;
  }
}

function isBrokenCircuit(e: unknown): boolean {
  return (
    typeof e === "object" &&
    e !== null &&
    (e as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true
  );
}

/** A failure to reach the server at all (not a timeout of a call that may have been applied). */
function isConnectionFailure(e: unknown): boolean {
  if (isDatastoreError(e)) return false;
  const name = e instanceof Error ? e.constructor.name : "";
  const message = e instanceof Error ? e.message : String(e);
  return (
    name === "GRPCUnavailableError" ||
    name === "GRPCInternalError" ||
    /No connection established|Failed to connect|Connection dropped|socket hang up|ECONNRESET/i.test(message)
  );
}

/** Races a call against the caller's signal (the request itself cannot be recalled once sent). */
function withSignal<R>(p: Promise<R>, signal: AbortSignal | undefined): Promise<R> {
  if (signal === undefined) return p;
  if (signal.aborted) {
    p.catch(() => undefined);
    return Promise.reject(abortedError(signal));
  }
  return new Promise<R>((resolve, reject) => {
    const onAbort = () => reject(abortedError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/** What the backend's modules share: one client, one prefix, one way to call, one closed flag. */
export interface EtcdContext {
  readonly client: Etcd3;
  readonly prefix: string;
  readonly calls: EtcdCalls;
  readonly validation: ValidationOptions;
  readonly now: () => Date;
  readonly log: Logger;
  readonly watchQueueLimit: number;
  /** Open watches, failed `closed` by `close()`. */
  readonly watches: Set<WatchStream>;
  isClosed(): boolean;
}
