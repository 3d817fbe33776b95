/**
 * Errors of the runtime side that are not a plugin's own error object: the plugin could not be found,
 * could not be run, timed out, or printed something that is not CNI output.
 *
 * @packageDocumentation
 */

/** Brand of {@link CniExecError} (`Symbol.for`, shared across module copies). */
export const CNI_EXEC_ERROR_BRAND: unique symbol = Symbol.for("@margay/cni/exec-error") as never;

/** Codes of {@link CniExecError}. */
export const CniExecErrorCode = {
  /** No executable of that name on the plugin path. */
  PluginNotFound: "plugin-not-found",
  /** The process could not be started, or exited non-zero without a CNI error object. */
  ExecFailed: "exec-failed",
  /** The per-exec timeout expired; the process was killed. */
  Timeout: "timeout",
  /** The caller's AbortSignal fired; the process was killed. */
  Aborted: "aborted",
  /** Exit 0 but stdout is not the expected JSON. */
  InvalidOutput: "invalid-output",
  /** The runtime refuses the request (e.g. CHECK without a cached result). */
  InvalidRequest: "invalid-request",
} as const;
/** Union of {@link CniExecErrorCode} values. */
export type CniExecErrorCode = (typeof CniExecErrorCode)[keyof typeof CniExecErrorCode];

/** Structured context of a {@link CniExecError}. */
export interface CniExecErrorDetails {
  /** Plugin type or path. */
  plugin?: string;
  /** CNI verb. */
  command?: string;
  /** Exit status, when the process ran. */
  exitCode?: number | null;
  /** Tail of stderr, when the process ran. */
  stderr?: string;
  /** Anything else worth logging. */
  [key: string]: unknown;
}

/** A runtime-side failure to execute a plugin. */
export class CniExecError extends Error {
  /** Brand checked by {@link isCniExecError}. */
  readonly [CNI_EXEC_ERROR_BRAND] = true as const;
  /** What went wrong. */
  readonly code: CniExecErrorCode;
  /** Structured context. */
  readonly details: CniExecErrorDetails;
  /** True for timeouts: the same call may succeed later. */
  readonly retryable: boolean;

  constructor(code: CniExecErrorCode, message: string, details: CniExecErrorDetails = {}, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "CniExecError";
    this.code = code;
    this.details = details;
    this.retryable = code === CniExecErrorCode.Timeout;
  }
}

/**
 * Returns true if `e` is a {@link CniExecError} (by brand), and, if `codes` are given, has one of them.
 * The same signature as every other `isXError(e, ...codes)` of Margay; an `undefined` code (the former
 * `code?` form) means "any code".
 */
export function isCniExecError(e: unknown, ...codes: CniExecErrorCode[]): e is CniExecError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [CNI_EXEC_ERROR_BRAND]?: unknown })[CNI_EXEC_ERROR_BRAND] !== true) return false;
  const wanted = codes.filter((c) => c !== undefined);
  return wanted.length === 0 || wanted.includes((e as CniExecError).code);
}
