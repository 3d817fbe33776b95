import { API_ERROR_BRAND, ApiErrorCode, hasApiErrorCode } from "../errors.js";
import type { ValidationIssue } from "../validation/errors.js";

/** Why a manifest was rejected. */
export const ManifestErrorReason = {
  /** YAML or JSON syntax error. */
  Syntax: "syntax",
  /** A document is not an object (e.g. a bare string or array). */
  NotAnObject: "not-an-object",
  /** `apiVersion` is neither `margay.io/v1` nor `projectcalico.org/v3`. */
  UnsupportedApiVersion: "unsupported-api-version",
  /** `kind` is not a supported kind of its apiVersion. */
  UnknownKind: "unknown-kind",
  /** A Calico field that has no Margay equivalent, with `strict: true`. */
  UnsupportedField: "unsupported-field",
  /** The document is a well-formed resource envelope but fails validation (see `issues`). */
  InvalidResource: "invalid-resource",
} as const;
/** Union of {@link ManifestErrorReason} values. */
export type ManifestErrorReason = (typeof ManifestErrorReason)[keyof typeof ManifestErrorReason];

/** Structured details of a {@link ManifestError}. */
export interface ManifestErrorDetails {
  /** Why the manifest was rejected. */
  readonly reason: ManifestErrorReason;
  /** 0-based index of the document in the stream (YAML `---` documents, or JSON array items). */
  readonly documentIndex: number;
  /** 0-based index of the item within a `List` document, if the problem is in one. */
  readonly itemIndex?: number;
  /** 1-based line of the problem (syntax errors) or of the document's start. */
  readonly line?: number;
  /** 1-based column, for syntax errors. */
  readonly column?: number;
  /** `kind` of the offending document, when known. */
  readonly kind?: string;
  /** `apiVersion` of the offending document, when known. */
  readonly apiVersion?: string;
  /** Validation issues, for `invalid-resource`. */
  readonly issues?: readonly ValidationIssue[];
}

/** Thrown by {@link parseManifests} when a manifest cannot be read. */
export class ManifestError extends Error {
  /** Always `"invalid-manifest"`. */
  readonly code = ApiErrorCode.InvalidManifest;
  /** Reading the same text fails the same way. */
  readonly retryable = false;
  /** Why and where. */
  readonly details: ManifestErrorDetails;
  /** Brand checked by {@link isManifestError}. */
  readonly [API_ERROR_BRAND] = true;

  /** @param message - what went wrong (the location is prefixed automatically). */
  constructor(message: string, details: ManifestErrorDetails, options?: { cause?: unknown }) {
    const where = [
      `document ${details.documentIndex}`,
      details.itemIndex !== undefined ? `item ${details.itemIndex}` : undefined,
      details.line !== undefined
        ? `line ${details.line}${details.column !== undefined ? `:${details.column}` : ""}`
        : undefined,
    ]
      .filter((s) => s !== undefined)
      .join(", ");
    super(`${where}: ${message}`, options);
    this.name = "ManifestError";
    this.details = details;
  }
}

/** Returns true if `e` is a {@link ManifestError} (by brand and code, never `instanceof`). */
export function isManifestError(e: unknown): e is ManifestError {
  return hasApiErrorCode(e, ApiErrorCode.InvalidManifest);
}
