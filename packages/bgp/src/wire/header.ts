/**
 * The 19-byte message header (RFC 4271 §4.1) and its checks (§6.1).
 *
 * @packageDocumentation
 */
import { HEADER_LENGTH, HeaderErrorSubcode } from "./constants.js";
import { MessageType as MT } from "./types.js";
import { headerError } from "./errors.js";

/** Smallest and largest legal length of each message type (RFC 4271 §6.1, RFC 2918 §3). */
const BOUNDS: Record<number, [number, number]> = {
  [MT.Open]: [29, Number.MAX_SAFE_INTEGER],
  [MT.Update]: [23, Number.MAX_SAFE_INTEGER],
  [MT.Notification]: [21, Number.MAX_SAFE_INTEGER],
  [MT.Keepalive]: [19, 19],
  [MT.RouteRefresh]: [23, 23],
};

/** The 2-byte length field, as NOTIFICATION data for Bad Message Length. */
function lengthData(len: number): Uint8Array {
  return new Uint8Array([len >>> 8, len & 255]);
}

/**
 * Checks marker, length field and type of the message header at the start of `b`, given the length
 * announced by the header and the limit `maxMessageSize`. Returns the announced length and type.
 * Throws a Message Header Error {@link BgpWireError}.
 */
export function checkHeaderFields(
  b: Uint8Array,
  off: number,
  maxMessageSize: number,
): { length: number; type: number } {
  for (let i = 0; i < 16; i++)
    if (b[off + i] !== 0xff)
      throw headerError(
        HeaderErrorSubcode.ConnectionNotSynchronized,
        "bad-marker",
        "message marker is not all ones",
      );
  const length = (b[off + 16]! << 8) | b[off + 17]!;
  const type = b[off + 18]!;
  if (length < HEADER_LENGTH || length > maxMessageSize)
    throw headerError(
      HeaderErrorSubcode.BadMessageLength,
      "bad-length",
      `message length ${length} out of bounds`,
      lengthData(length),
    );
  const bounds = BOUNDS[type];
  if (!bounds)
    throw headerError(
      HeaderErrorSubcode.BadMessageType,
      "bad-type",
      `unknown message type ${type}`,
      new Uint8Array([type]),
    );
  // ROUTE-REFRESH of the wrong length is reported by the RFC 7313 code in decodeRouteRefresh, not here.
  if (type !== MT.RouteRefresh && (length < bounds[0] || length > bounds[1]))
    throw headerError(
      HeaderErrorSubcode.BadMessageLength,
      "bad-length-for-type",
      `length ${length} is not valid for message type ${type}`,
      lengthData(length),
    );
  return { length, type };
}

/**
 * Checks the header of one complete message in `b` (the header length must equal `b.length`) and, when
 * `expectType` is given, its type. Returns the type.
 */
export function checkHeader(b: Uint8Array, maxMessageSize: number, expectType?: number): number {
  if (b.length < HEADER_LENGTH)
    throw headerError(
      HeaderErrorSubcode.BadMessageLength,
      "truncated-header",
      "message shorter than its header",
      lengthData(b.length),
    );
  const { length, type } = checkHeaderFields(b, 0, maxMessageSize);
  if (length !== b.length)
    throw headerError(
      HeaderErrorSubcode.BadMessageLength,
      "length-mismatch",
      `header says ${length} bytes, got ${b.length}`,
      lengthData(length),
    );
  if (expectType !== undefined && type !== expectType)
    throw headerError(
      HeaderErrorSubcode.BadMessageType,
      "unexpected-type",
      `expected type ${expectType}, got ${type}`,
      new Uint8Array([type]),
    );
  return type;
}

/** The type byte of a complete message (no checks): lets a caller route UPDATEs to `decodeUpdate`. */
export function messageType(b: Uint8Array): number {
  return b[18] ?? 0;
}
