/**
 * OPEN message body (RFC 4271 §4.2) with Capabilities optional parameters (RFC 5492) and the extended
 * optional parameters length of RFC 9072.
 *
 * @packageDocumentation
 */
import { BGP_VERSION, OpenErrorSubcode } from "./constants.js";
import { openError } from "./errors.js";
import { decodeCapability, writeCapability } from "./capabilities.js";
import { ipv4ToString, writeIpv4 } from "./ip.js";
import { type Capability, MessageType, type OpenMessage } from "./types.js";
import { Writer } from "./writer.js";

const PARAM_CAPABILITIES = 2;

/** Decodes an OPEN body (`[start, end)` of `b`, after the header). Throws {@link BgpWireError}. */
export function decodeOpenBody(b: Uint8Array, start: number, end: number): OpenMessage {
  if (end - start < 10)
    throw openError(OpenErrorSubcode.Unspecific, "open-too-short", "OPEN body shorter than 10 bytes");
  const version = b[start]!;
  if (version !== BGP_VERSION)
    throw openError(
      OpenErrorSubcode.UnsupportedVersionNumber,
      "unsupported-version",
      `unsupported BGP version ${version}`,
      new Uint8Array([0, BGP_VERSION]),
    );
  const myAs = (b[start + 1]! << 8) | b[start + 2]!;
  const holdTime = (b[start + 3]! << 8) | b[start + 4]!;
  const bgpId = ipv4ToString(b, start + 5);
  let optLen = b[start + 9]!;
  let off = start + 10;
  let extended = false;
  // RFC 9072: a non-extended length of 255 followed by type 255 announces 2-byte lengths.
  if (optLen === 255 && off < end && b[off] === 255) {
    if (off + 3 > end)
      throw openError(
        OpenErrorSubcode.Unspecific,
        "open-length",
        "truncated extended optional parameters length",
      );
    optLen = (b[off + 1]! << 8) | b[off + 2]!;
    off += 3;
    extended = true;
  }
  if (off + optLen !== end)
    throw openError(
      OpenErrorSubcode.Unspecific,
      "open-length",
      "optional parameters length does not match the message",
    );
  const capabilities: Capability[] = [];
  while (off < end) {
    const hdr = extended ? 3 : 2;
    if (off + hdr > end)
      throw openError(OpenErrorSubcode.Unspecific, "param-overrun", "truncated optional parameter");
    const type = b[off]!;
    const plen = extended ? (b[off + 1]! << 8) | b[off + 2]! : b[off + 1]!;
    off += hdr;
    if (off + plen > end)
      throw openError(OpenErrorSubcode.Unspecific, "param-overrun", "optional parameter overruns OPEN");
    if (type !== PARAM_CAPABILITIES)
      throw openError(
        OpenErrorSubcode.UnsupportedOptionalParameter,
        "unsupported-optional-parameter",
        `unsupported optional parameter ${type}`,
      );
    const pend = off + plen;
    while (off < pend) {
      if (off + 2 > pend)
        throw openError(OpenErrorSubcode.Unspecific, "capability-overrun", "truncated capability");
      const code = b[off]!;
      const clen = b[off + 1]!;
      off += 2;
      if (off + clen > pend)
        throw openError(OpenErrorSubcode.Unspecific, "capability-overrun", "capability overruns parameter");
      capabilities.push(decodeCapability(b, code, off, clen));
      off += clen;
    }
  }
  return { type: MessageType.Open, version, myAs, holdTime, bgpId, capabilities };
}

/**
 * Writes an OPEN body. All capabilities go in one Capabilities optional parameter, as BIRD 2 and GoBGP 3
 * send them; past 255 bytes the RFC 9072 extended length is used.
 */
export function writeOpenBody(w: Writer, m: OpenMessage): void {
  w.u8(m.version).u16(m.myAs).u16(m.holdTime);
  const id = w.reserve(4);
  writeIpv4(w.buf, id, m.bgpId);
  const caps = new Writer(64);
  for (const c of m.capabilities) writeCapability(caps, c);
  if (caps.len === 0) {
    w.u8(0);
    return;
  }
  if (caps.len + 2 <= 255) {
    w.u8(caps.len + 2)
      .u8(PARAM_CAPABILITIES)
      .u8(caps.len)
      .bytes(caps.buf.subarray(0, caps.len));
    return;
  }
  w.u8(255)
    .u8(255)
    .u16(caps.len + 3)
    .u8(PARAM_CAPABILITIES)
    .u16(caps.len)
    .bytes(caps.buf.subarray(0, caps.len));
}
