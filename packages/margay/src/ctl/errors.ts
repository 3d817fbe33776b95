/**
 * margayctl's error type and its exit codes. Every failure the CLI reports is a {@link CtlError}
 * (or is turned into one by `toCtlError`), so the exit code is decided in one place.
 *
 * @packageDocumentation
 */

/** Brand of {@link CtlError} (`Symbol.for`, shared across module copies). */
const BRAND: unique symbol = Symbol.for("@margay/margay/ctl-error") as never;

/** Documented exit codes (see docs/margayctl.md). */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** The command failed: datastore unreachable or refused, a write conflicted, a file could not be read. */
  Error: 1,
  /** Bad usage or bad input (unknown flag, invalid manifest, bad selector). Nothing was written. */
  Usage: 2,
  /**
   * A precondition on the datastore's contents failed: the object does not exist (get, replace, delete,
   * patch, label) or already exists (create). Nothing was written.
   */
  NotFound: 3,
  /** A batch was interrupted after part of it was written (each written object is listed). */
  Partial: 4,
} as const;
/** Union of {@link ExitCode} values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** What went wrong, in kebab-case. */
export const CtlErrorCode = {
  /** Bad flags or arguments. */
  Usage: "usage",
  /** A manifest or a value failed validation. */
  InvalidInput: "invalid-input",
  /** The configuration (file, environment, flags) is bad. */
  InvalidConfig: "invalid-config",
  /** The object does not exist. */
  NotFound: "not-found",
  /** The object already exists. */
  AlreadyExists: "already-exists",
  /** A compare-and-swap failed: somebody else wrote the object first. */
  Conflict: "conflict",
  /** The datastore failed (unreachable, TLS, auth...). */
  Datastore: "datastore",
  /** A file could not be read or written. */
  Io: "io",
  /** Part of a batch was written. */
  Partial: "partial",
  /** The host's dataplane could not be read (nft or ip failed, or lacks what the command needs). */
  Dataplane: "dataplane",
} as const;
/** Union of {@link CtlErrorCode} values. */
export type CtlErrorCode = (typeof CtlErrorCode)[keyof typeof CtlErrorCode];

const EXIT: Record<CtlErrorCode, ExitCode> = {
  usage: ExitCode.Usage,
  "invalid-input": ExitCode.Usage,
  "invalid-config": ExitCode.Usage,
  "not-found": ExitCode.NotFound,
  "already-exists": ExitCode.NotFound,
  conflict: ExitCode.Error,
  datastore: ExitCode.Error,
  io: ExitCode.Error,
  partial: ExitCode.Partial,
  dataplane: ExitCode.Error,
};

/** A failure margayctl reports: one line on stderr and an exit code. */
export class CtlError extends Error {
  /** Always true; see {@link isCtlError}. */
  readonly [BRAND] = true as const;
  /** Always `"CtlError"`. */
  override readonly name = "CtlError";
  /** What went wrong. */
  readonly code: CtlErrorCode;
  /** True when running the same command again may succeed (a conflict, an unreachable datastore). */
  readonly retryable: boolean;
  /** Structured context (kind, name, field path, file...). */
  readonly details: Readonly<Record<string, unknown>>;

  /**
   * @param code - what went wrong.
   * @param message - one line naming the object or field at fault.
   * @param details - structured context.
   * @param cause - the underlying error.
   */
  constructor(
    code: CtlErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    cause?: unknown,
    retryable = false,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
    this.retryable = retryable;
  }

  /** The process exit code of this error. */
  get exitCode(): ExitCode {
    return EXIT[this.code];
  }
}

/** True if `e` is a {@link CtlError} (brand check, not `instanceof`). */
export function isCtlError(e: unknown, ...codes: CtlErrorCode[]): e is CtlError {
  if (typeof e !== "object" || e === null || (e as { [BRAND]?: unknown })[BRAND] !== true) return false;
  return codes.length === 0 || codes.includes((e as CtlError).code);
}

/** The `code` of any Margay error (datastore, api, ipam, policy), or undefined. */
export function errorCode(e: unknown): string | undefined {
  const c = typeof e === "object" && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof c === "string" ? c : undefined;
}

/** Turns any thrown value into a {@link CtlError} with the right code. */
export function toCtlError(e: unknown): CtlError {
  if (isCtlError(e)) return e;
  const code = errorCode(e);
  const message = e instanceof Error ? e.message : String(e);
  const details =
    typeof e === "object" && e !== null && typeof (e as { details?: unknown }).details === "object"
      ? ((e as { details: Record<string, unknown> }).details ?? {})
      : {};
  switch (code) {
    case "not-found":
      return new CtlError(CtlErrorCode.NotFound, message, details, e);
    case "already-exists":
      return new CtlError(CtlErrorCode.AlreadyExists, message, details, e);
    case "conflict":
      return new CtlError(CtlErrorCode.Conflict, message, details, e, true);
    case "invalid-resource":
    case "invalid-manifest":
    case "invalid":
    case "invalid-selector":
    case "invalid-input":
    case "invalid-ip-address":
    case "invalid-cidr":
      return new CtlError(CtlErrorCode.InvalidInput, message, details, e);
    case "invalid-config":
    case "unreadable-file":
      return new CtlError(CtlErrorCode.InvalidConfig, message, details, e);
    default:
      return new CtlError(
        CtlErrorCode.Datastore,
        message,
        details,
        e,
        typeof e === "object" && e !== null && (e as { retryable?: unknown }).retryable === true,
      );
  }
}
