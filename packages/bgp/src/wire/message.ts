/**
 * Whole-message encode/decode for every BGP message type.
 *
 * @packageDocumentation
 */
import { HEADER_LENGTH, NotificationCode, RouteRefreshErrorSubcode } from "./constants.js";
import { BgpEncodeError, BgpWireError } from "./errors.js";
import { checkHeader } from "./header.js";
import { decodeOpenBody, writeOpenBody } from "./open.js";
import {
  type BgpMessage,
  type CodecContext,
  ErrorAction,
  MessageType,
  MessageType as MT,
  type NotificationMessage,
  type RouteRefreshMessage,
} from "./types.js";
import { decodeUpdate, encodeUpdate } from "./update.js";
import { Writer } from "./writer.js";

function decodeNotification(b: Uint8Array): NotificationMessage {
  return { type: MessageType.Notification, code: b[19]!, subcode: b[20]!, data: b.slice(21) };
}

function decodeRouteRefresh(b: Uint8Array): RouteRefreshMessage {
  if (b.length !== 23)
    throw new BgpWireError("wire-route-refresh", `ROUTE-REFRESH of ${b.length} bytes`, {
      notification: {
        code: NotificationCode.RouteRefreshMessageError,
        subcode: RouteRefreshErrorSubcode.InvalidMessageLength,
        data: b.slice(),
      },
      details: { reason: "route-refresh-length" },
    });
  return { type: MessageType.RouteRefresh, afi: (b[19]! << 8) | b[20]!, subtype: b[21]!, safi: b[22]! };
}

/**
 * Decodes one complete message (header included), strictly: any UPDATE problem other than
 * `attribute-discard` is thrown as its {@link BgpWireError}. A speaker applying RFC 7606 routes UPDATEs to
 * {@link decodeUpdate} instead (see {@link messageType}).
 */
export function decodeMessage(bytes: Uint8Array, ctx: CodecContext): BgpMessage {
  const type = checkHeader(bytes, ctx.maxMessageSize);
  switch (type) {
    case MT.Open:
      return decodeOpenBody(bytes, HEADER_LENGTH, bytes.length);
    case MT.Update: {
      const r = decodeUpdate(bytes, ctx);
      if (r.action !== undefined && r.action !== ErrorAction.AttributeDiscard)
        throw r.errors.find((e) => e.action === r.action)!;
      return r.update;
    }
    case MT.Notification:
      return decodeNotification(bytes);
    case MT.Keepalive:
      return { type: MessageType.Keepalive };
    default:
      return decodeRouteRefresh(bytes);
  }
}

function range(v: number, bits: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits)
    throw new BgpEncodeError("encode-invalid", `${what} out of range: ${v}`, {
      reason: "range",
      field: what,
    });
  return v;
}

/** Encodes one message (header included). Throws {@link BgpEncodeError} on values the wire cannot carry. */
export function encodeMessage(msg: BgpMessage, ctx: CodecContext): Uint8Array {
  if (msg.type === MT.Update) return encodeUpdate(msg, ctx);
  const w = new Writer(msg.type === MT.Open ? 128 : 32);
  w.reserve(HEADER_LENGTH);
  switch (msg.type) {
    case MT.Open:
      writeOpenBody(w, msg);
      break;
    case MT.Notification:
      w.u8(range(msg.code, 8, "code"))
        .u8(range(msg.subcode, 8, "subcode"))
        .bytes(msg.data);
      break;
    case MT.Keepalive:
      break;
    case MT.RouteRefresh:
      w.u16(range(msg.afi, 16, "afi"))
        .u8(range(msg.subtype, 8, "subtype"))
        .u8(range(msg.safi, 8, "safi"));
      break;
  }
  // OPEN, NOTIFICATION, KEEPALIVE and ROUTE-REFRESH keep the 4096 limit before negotiation (RFC 8654 §4).
  const limit = msg.type === MT.Open || msg.type === MT.Notification ? 4096 : ctx.maxMessageSize;
  if (w.len > limit)
    throw new BgpEncodeError("encode-too-large", `message of ${w.len} bytes exceeds ${limit}`, {
      reason: "message-too-large",
      size: w.len,
      max: limit,
    });
  const out = w.finish();
  out.fill(0xff, 0, 16);
  out[16] = out.length >>> 8;
  out[17] = out.length & 255;
  out[18] = msg.type;
  return out;
}

/** A KEEPALIVE, the same 19 bytes every time (shared; do not mutate). */
export const KEEPALIVE_BYTES: Uint8Array = encodeMessage(
  { type: MessageType.Keepalive },
  {
    asn4: true,
    maxMessageSize: 4096,
    addPathReceive: new Set(),
    addPathSend: new Set(),
    extendedNextHop: new Set(),
  },
);
