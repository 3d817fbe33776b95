/**
 * The cluster lab's one error type.
 *
 * @packageDocumentation
 */

/** What went wrong in the lab. */
export const ClusterLabErrorCode = {
  /** Bad options or arguments (a host that does not exist, a duplicate name). */
  BadInput: "bad-input",
  /** A command (ip, etcd, bird, the agent) failed or could not be started. */
  CommandFailed: "command-failed",
  /** A wait ran out of time. */
  Timeout: "timeout",
  /** The agent binary is missing (not built). */
  AgentMissing: "agent-missing",
  /** The workload API refused or failed an add. */
  WorkloadFailed: "workload-failed",
  /** The lab was closed. */
  Closed: "closed",
} as const;

/** One of {@link ClusterLabErrorCode}'s values. */
export type ClusterLabErrorCode = (typeof ClusterLabErrorCode)[keyof typeof ClusterLabErrorCode];

const BRAND = Symbol.for("margay.cluster-lab-error");

/** An error of the cluster lab: a code, whether retrying may help, and structured details. */
export class ClusterLabError extends Error {
  readonly [BRAND] = true;
  override readonly name = "ClusterLabError";
  readonly code: ClusterLabErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: ClusterLabErrorCode,
    message: string,
    options: {
      readonly retryable?: boolean;
      readonly details?: Record<string, unknown>;
      readonly cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = Object.freeze({ ...options.details });
  }
}

/** True when `e` is a {@link ClusterLabError} (by brand, so two loaded copies still agree). */
export function isClusterLabError(e: unknown): e is ClusterLabError {
  return typeof e === "object" && e !== null && (e as Record<symbol, unknown>)[BRAND] === true;
}
