/**
 * Typed errors of the agent's dataplane pipeline. Guards check a process-wide brand plus the `code`, never
 * `instanceof` (the bundle and a test may load two copies of this module).
 *
 * @packageDocumentation
 */

/** Brand set on every error the pipeline throws (`Symbol.for`, shared across module copies). */
export const PIPELINE_ERROR_BRAND: unique symbol = Symbol.for("@margay/margay/node/pipeline-error") as never;

/** Error codes of the dataplane pipeline. */
export const PipelineErrorCode = {
  /** The pipeline was closed (or the agent stopped) before the awaited work was programmed. */
  Closed: "closed",
  /** The caller's signal aborted a wait. */
  Aborted: "aborted",
  /** A bad argument or option (empty key, unknown driver, missing remote command). */
  InvalidOptions: "invalid-options",
} as const;
/** Union of {@link PipelineErrorCode} values. */
export type PipelineErrorCode = (typeof PipelineErrorCode)[keyof typeof PipelineErrorCode];

/** Structured details of a {@link PipelineError}. */
export interface PipelineErrorDetails {
  /** The WorkloadEndpoint key a wait was for. */
  readonly key?: string | undefined;
  /** The option or argument at fault. */
  readonly field?: string | undefined;
  readonly [key: string]: unknown;
}

/** The one error type the pipeline throws. */
export class PipelineError extends Error {
  /** What failed. */
  readonly code: PipelineErrorCode;
  /** Whether trying again may succeed (a closed pipeline or a bad option will not). */
  readonly retryable: boolean;
  /** Where and what. */
  readonly details: PipelineErrorDetails;
  /** Brand checked by {@link isPipelineError}. */
  readonly [PIPELINE_ERROR_BRAND] = true;

  /**
   * @param code - what failed.
   * @param message - human-readable text.
   * @param details - structured context.
   * @param options - optional `cause`.
   */
  constructor(
    code: PipelineErrorCode,
    message: string,
    details: PipelineErrorDetails = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "PipelineError";
    this.code = code;
    this.retryable = code === PipelineErrorCode.Aborted;
    this.details = details;
  }
}

/** True if `e` is a {@link PipelineError} with one of `codes` (any code when none are given). */
export function isPipelineError(e: unknown, ...codes: PipelineErrorCode[]): e is PipelineError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [PIPELINE_ERROR_BRAND]?: unknown })[PIPELINE_ERROR_BRAND] !== true) return false;
  return codes.length === 0 || codes.includes((e as PipelineError).code);
}
