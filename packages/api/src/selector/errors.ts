import { API_ERROR_BRAND, ApiErrorCode, hasApiErrorCode } from "../errors.js";

/** Structured details of a {@link SelectorParseError}. */
export interface SelectorParseErrorDetails {
  /** The selector text that failed. */
  readonly selector: string;
  /** Offset (UTF-16 code units) in `selector` where the problem was found. */
  readonly position: number;
  /** Human-readable reason, without the position. */
  readonly reason: string;
}

/**
 * Thrown when a selector expression cannot be tokenized or parsed. This is the only error the selector
 * parser throws, whatever the input.
 */
export class SelectorParseError extends Error {
  /** Always `"invalid-selector"`. */
  readonly code = ApiErrorCode.InvalidSelector;
  /** Parse errors are deterministic: retrying the same text fails the same way. */
  readonly retryable = false;
  /** Offset (UTF-16 code units) in the selector where the problem was found. */
  readonly position: number;
  /** Selector, position and reason. */
  readonly details: SelectorParseErrorDetails;
  /** Brand checked by {@link isSelectorParseError}. */
  readonly [API_ERROR_BRAND] = true;

  /** @param details - what failed and where. */
  constructor(details: SelectorParseErrorDetails) {
    super(
      `invalid selector ${JSON.stringify(details.selector)} at position ${details.position}: ${details.reason}`,
    );
    this.name = "SelectorParseError";
    this.position = details.position;
    this.details = details;
  }
}

/** Returns true if `e` is a {@link SelectorParseError} (by brand and code, never `instanceof`). */
export function isSelectorParseError(e: unknown): e is SelectorParseError {
  return hasApiErrorCode(e, ApiErrorCode.InvalidSelector);
}
