/**
 * The node agent's own failures (composition, registration, operations endpoints). Configuration errors
 * are `AgentConfigError` (./config/errors.ts); a failing library keeps its own typed error as `cause`.
 *
 * @packageDocumentation
 */

/** Brand of {@link AgentError} (`Symbol.for`, shared across module copies). */
const BRAND: unique symbol = Symbol.for("@margay/margay/agent-error") as never;

/** What went wrong. */
export const AgentErrorCode = {
  /** The datastore could not be opened (bad snapshot, etcd files unreadable, ...). */
  DatastoreOpen: "datastore-open-failed",
  /** A startup step failed; `details.step` names it and `cause` holds the library's error. */
  StartupFailed: "startup-failed",
  /** The Node resource could not be written (after retries on conflict). */
  Registration: "registration-failed",
  /** A default pool could not be created. */
  DefaultPool: "default-pool-failed",
  /** The health or metrics endpoint could not listen (address in use, bad host). */
  OpsListen: "ops-listen-failed",
  /** No address could be allocated for a tunnel device (no pool that allows it). */
  TunnelAddress: "tunnel-address-failed",
  /** The agent was stopped before it finished starting. */
  Stopped: "stopped",
} as const;
/** Union of {@link AgentErrorCode} values. */
export type AgentErrorCode = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];

/** Context of an {@link AgentError}. */
export interface AgentErrorDetails {
  /** The startup step (`datastore`, `agent-configuration`, `addresses`, `default-pools`, `registration`, ...). */
  readonly step?: string | undefined;
  /** The code of the underlying typed error, when it has one. */
  readonly causeCode?: string | undefined;
  /** Further context (node, pool, address, host:port). */
  readonly [key: string]: unknown;
}

/** A failure of the node agent itself. */
export class AgentError extends Error {
  /** Always true; see {@link isAgentError}. */
  readonly [BRAND] = true as const;
  /** Always `"AgentError"`. */
  override readonly name = "AgentError";
  /** What went wrong. */
  readonly code: AgentErrorCode;
  /** True when retrying the same step could succeed (a datastore that was unavailable). */
  readonly retryable: boolean;
  /** Step and context. */
  readonly details: AgentErrorDetails;

  /**
   * @param code - what went wrong.
   * @param message - operator words, naming the step and the object.
   * @param details - step, cause code, context.
   * @param options - the underlying failure and whether a retry can help (default: the cause's).
   */
  constructor(
    code: AgentErrorCode,
    message: string,
    details: AgentErrorDetails = {},
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = details;
    this.retryable = options.retryable ?? retryableOf(options.cause);
  }
}

/** True if `e` is an {@link AgentError} (brand check, not `instanceof`). */
export function isAgentError(e: unknown): e is AgentError {
  return typeof e === "object" && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
}

/** The `code` of a typed error of any Margay package, else undefined. */
export function errorCode(e: unknown): string | undefined {
  const code = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

function retryableOf(e: unknown): boolean {
  return typeof e === "object" && e !== null && (e as { retryable?: unknown }).retryable === true;
}

/** The message of any thrown value. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
