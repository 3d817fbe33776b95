/**
 * Typed errors of the wire layer. A decode error says which NOTIFICATION to send (code, subcode, data)
 * and which RFC 7606 action applies; the FSM decides what to do with it.
 *
 * @packageDocumentation
 */
import { NotificationCode } from "./constants.js";
import { ErrorAction } from "./types.js";

/** What part of a received message failed to decode or validate. */
export type BgpWireErrorCode =
  | "wire-header"
  | "wire-open"
  | "wire-update"
  | "wire-notification"
  | "wire-route-refresh";

/** The NOTIFICATION a receiver sends when it resets the session for this error. */
export interface NotificationInfo {
  code: number;
  subcode: number;
  data: Uint8Array;
}

/** Structured context of a {@link BgpWireError}. */
export interface BgpWireErrorDetails {
  /** Short machine-readable reason, e.g. `"bad-marker"`, `"as-path-overrun"`. */
  reason: string;
  /** Path attribute type code concerned, when the error is about one attribute. */
  attribute?: number;
  /** AFI/SAFI concerned, when the action is `afi-safi-disable`. */
  afi?: number;
  safi?: number;
  /** Offset into the message where decoding failed, when known. */
  offset?: number;
}

const BRAND = Symbol.for("@margay/bgp/wire.BgpWireError");
const ENCODE_BRAND = Symbol.for("@margay/bgp/wire.BgpEncodeError");

/** Severity order of RFC 7606 actions: higher is more severe. */
const SEVERITY: Record<ErrorAction, number> = {
  "attribute-discard": 1,
  "treat-as-withdraw": 2,
  "afi-safi-disable": 3,
  "session-reset": 4,
};

/**
 * A received message is malformed. Never retryable: the same bytes fail the same way.
 * `notification` is what to send when the session is reset; `action` is the RFC 7606 approach.
 */
export class BgpWireError extends Error {
  override readonly name = "BgpWireError";
  readonly [BRAND] = true;
  readonly code: BgpWireErrorCode;
  readonly notification: NotificationInfo;
  readonly action: ErrorAction;
  readonly retryable = false;
  readonly details: BgpWireErrorDetails;

  constructor(
    code: BgpWireErrorCode,
    message: string,
    init: {
      notification: NotificationInfo;
      action?: ErrorAction;
      details: BgpWireErrorDetails;
      cause?: unknown;
    },
  ) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.code = code;
    this.notification = init.notification;
    this.action = init.action ?? ErrorAction.SessionReset;
    this.details = init.details;
  }
}

/** True when `e` is a {@link BgpWireError}, optionally with one of `codes` (checks a brand, not `instanceof`). */
export function isBgpWireError(e: unknown, ...codes: BgpWireErrorCode[]): e is BgpWireError {
  if (typeof e !== "object" || e === null || (e as Record<symbol, unknown>)[BRAND] !== true) return false;
  return codes.length === 0 || codes.includes((e as BgpWireError).code);
}

/** Why a value could not be encoded. */
export type BgpEncodeErrorCode = "encode-invalid" | "encode-too-large";

/** The caller asked to encode something the wire format cannot carry (a bug or misconfiguration). */
export class BgpEncodeError extends Error {
  override readonly name = "BgpEncodeError";
  readonly [ENCODE_BRAND] = true;
  readonly code: BgpEncodeErrorCode;
  readonly retryable = false;
  readonly details: { reason: string; [key: string]: unknown };

  constructor(
    code: BgpEncodeErrorCode,
    message: string,
    details: { reason: string; [key: string]: unknown },
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
  }
}

/** True when `e` is a {@link BgpEncodeError}, optionally with one of `codes` (checks a brand). */
export function isBgpEncodeError(e: unknown, ...codes: BgpEncodeErrorCode[]): e is BgpEncodeError {
  if (typeof e !== "object" || e === null || (e as Record<symbol, unknown>)[ENCODE_BRAND] !== true)
    return false;
  return codes.length === 0 || codes.includes((e as BgpEncodeError).code);
}

/** The more severe of two RFC 7606 actions (`undefined` counts as no action). */
export function worstAction(a: ErrorAction | undefined, b: ErrorAction | undefined): ErrorAction | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return SEVERITY[a] >= SEVERITY[b] ? a : b;
}

const EMPTY = new Uint8Array(0);

/** @internal */
export function headerError(subcode: number, reason: string, message: string, data: Uint8Array = EMPTY) {
  return new BgpWireError("wire-header", message, {
    notification: { code: NotificationCode.MessageHeaderError, subcode, data },
    details: { reason },
  });
}

/** @internal */
export function openError(subcode: number, reason: string, message: string, data: Uint8Array = EMPTY) {
  return new BgpWireError("wire-open", message, {
    notification: { code: NotificationCode.OpenMessageError, subcode, data },
    details: { reason },
  });
}

/** @internal */
export function updateError(
  subcode: number,
  action: ErrorAction,
  details: BgpWireErrorDetails,
  message: string,
  data: Uint8Array = EMPTY,
) {
  return new BgpWireError("wire-update", message, {
    notification: { code: NotificationCode.UpdateMessageError, subcode, data },
    action,
    details,
  });
}
