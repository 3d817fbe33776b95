import { API_ERROR_BRAND, ApiErrorCode, hasApiErrorCode } from "../errors.js";

/** One problem found while validating a resource. */
export interface ValidationIssue {
  /**
   * Where the problem is, as a property path from the resource root, e.g.
   * `spec.ingress[2].destination.ports[0]` or `metadata.labels["app.kubernetes.io/name"]`.
   * Empty for the root itself.
   */
  readonly path: string;
  /** Why the value is invalid. */
  readonly message: string;
}

/** Structured details of a {@link ValidationError}. */
export interface ValidationErrorDetails {
  /** Kind of the resource, when it could be read. */
  readonly kind?: string;
  /** `metadata.name`, when it could be read. */
  readonly name?: string;
  /** `metadata.namespace`, when it could be read. */
  readonly namespace?: string;
  /** Every problem found (validation does not stop at the first one). */
  readonly issues: readonly ValidationIssue[];
}

/** Thrown by {@link validateResource} (and friends) when a resource is invalid. */
export class ValidationError extends Error {
  /** Always `"invalid-resource"`. */
  readonly code = ApiErrorCode.InvalidResource;
  /** Validation is deterministic: the same input fails the same way. */
  readonly retryable = false;
  /** Every problem found, each with its exact path. */
  readonly issues: readonly ValidationIssue[];
  /** Kind, name and issues. */
  readonly details: ValidationErrorDetails;
  /** Brand checked by {@link isValidationError}. */
  readonly [API_ERROR_BRAND] = true;

  /** @param details - the resource identity (if known) and its issues (at least one). */
  constructor(details: ValidationErrorDetails, options?: { cause?: unknown }) {
    const what = details.kind ? `${details.kind}${details.name ? ` "${details.name}"` : ""}` : "resource";
    const first = details.issues[0];
    const more = details.issues.length > 1 ? ` (and ${details.issues.length - 1} more)` : "";
    super(
      `invalid ${what}: ${first ? `${first.path || "<root>"}: ${first.message}` : "unknown problem"}${more}`,
      options,
    );
    this.name = "ValidationError";
    this.issues = details.issues;
    this.details = details;
  }
}

/** Returns true if `e` is a {@link ValidationError} (by brand and code, never `instanceof`). */
export function isValidationError(e: unknown): e is ValidationError {
  return hasApiErrorCode(e, ApiErrorCode.InvalidResource);
}
