/**
 * Capability TLVs of the OPEN Capabilities optional parameter (RFC 5492) and the known capabilities:
 * MP (RFC 4760), route refresh (RFC 2918), enhanced route refresh (RFC 7313), graceful restart
 * (RFC 4724), 4-octet AS (RFC 6793), extended message (RFC 8654), ADD-PATH (RFC 7911), extended next
 * hop (RFC 8950). Unknown capabilities are kept as raw bytes.
 *
 * @packageDocumentation
 */
import { CapabilityCode, OpenErrorSubcode } from "./constants.js";
import { BgpEncodeError, openError } from "./errors.js";
import type { Capability } from "./types.js";
import type { Writer } from "./writer.js";

function malformed(code: number, len: number) {
  return openError(
    OpenErrorSubcode.Unspecific,
    "malformed-capability",
    `capability ${code} has an invalid length ${len}`,
  );
}

/** Decodes one capability value (`len` bytes at `off`). */
export function decodeCapability(b: Uint8Array, code: number, off: number, len: number): Capability {
  const u16 = (o: number) => (b[o]! << 8) | b[o + 1]!;
  switch (code) {
    case CapabilityCode.Multiprotocol:
      if (len !== 4) throw malformed(code, len);
      return { code: 1, kind: "multiprotocol", afi: u16(off), safi: b[off + 3]! };
    case CapabilityCode.RouteRefresh:
      if (len !== 0) throw malformed(code, len);
      return { code: 2, kind: "route-refresh" };
    case CapabilityCode.EnhancedRouteRefresh:
      if (len !== 0) throw malformed(code, len);
      return { code: 70, kind: "enhanced-route-refresh" };
    case CapabilityCode.ExtendedMessage:
      if (len !== 0) throw malformed(code, len);
      return { code: 6, kind: "extended-message" };
    case CapabilityCode.FourOctetAs:
      if (len !== 4) throw malformed(code, len);
      return {
        code: 65,
        kind: "four-octet-as",
        asn: ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0,
      };
    case CapabilityCode.GracefulRestart: {
      if (len < 2 || (len - 2) % 4 !== 0) throw malformed(code, len);
      const v = u16(off);
      const families: { afi: number; safi: number; forwardingPreserved: boolean }[] = [];
      for (let o = off + 2; o < off + len; o += 4)
        families.push({ afi: u16(o), safi: b[o + 2]!, forwardingPreserved: (b[o + 3]! & 0x80) !== 0 });
      return {
        code: 64,
        kind: "graceful-restart",
        restartState: (v & 0x8000) !== 0,
        notification: (v & 0x4000) !== 0,
        restartTime: v & 0x0fff,
        families,
      };
    }
    case CapabilityCode.AddPath: {
      if (len % 4 !== 0) throw malformed(code, len);
      const families: { afi: number; safi: number; sendReceive: 1 | 2 | 3 }[] = [];
      for (let o = off; o < off + len; o += 4) {
        const sr = b[o + 3]!;
        if (sr < 1 || sr > 3) throw malformed(code, len);
        families.push({ afi: u16(o), safi: b[o + 2]!, sendReceive: sr as 1 | 2 | 3 });
      }
      return { code: 69, kind: "add-path", families };
    }
    case CapabilityCode.ExtendedNextHop: {
      if (len % 6 !== 0) throw malformed(code, len);
      const families: { afi: number; safi: number; nextHopAfi: number }[] = [];
      for (let o = off; o < off + len; o += 6)
        families.push({ afi: u16(o), safi: u16(o + 2), nextHopAfi: u16(o + 4) });
      return { code: 5, kind: "extended-next-hop", families };
    }
    default:
      return { code, kind: "unknown", data: b.slice(off, off + len) };
  }
}

function checkU(v: number, bits: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits)
    throw new BgpEncodeError("encode-invalid", `${what} out of range: ${v}`, {
      reason: "range",
      field: what,
    });
  return v;
}

/** Writes one capability TLV (code, length, value). */
export function writeCapability(w: Writer, c: Capability): void {
  w.u8(checkU(c.code, 8, "capability code"));
  const lenAt = w.reserve(1);
  const start = w.len;
  switch (c.kind) {
    case "multiprotocol":
      w.u16(checkU(c.afi, 16, "afi"))
        .u8(0)
        .u8(checkU(c.safi, 8, "safi"));
      break;
    case "route-refresh":
    case "enhanced-route-refresh":
    case "extended-message":
      break;
    case "four-octet-as":
      w.u32(checkU(c.asn, 32, "asn"));
      break;
    case "graceful-restart":
      w.u16(
        (c.restartState ? 0x8000 : 0) |
          (c.notification ? 0x4000 : 0) |
          checkU(c.restartTime, 12, "restartTime"),
      );
      for (const f of c.families)
        w.u16(checkU(f.afi, 16, "afi"))
          .u8(checkU(f.safi, 8, "safi"))
          .u8(f.forwardingPreserved ? 0x80 : 0);
      break;
    case "add-path":
      for (const f of c.families)
        w.u16(checkU(f.afi, 16, "afi"))
          .u8(checkU(f.safi, 8, "safi"))
          .u8(f.sendReceive);
      break;
    case "extended-next-hop":
      for (const f of c.families)
        w.u16(checkU(f.afi, 16, "afi"))
          .u16(checkU(f.safi, 16, "safi"))
          .u16(checkU(f.nextHopAfi, 16, "nextHopAfi"));
      break;
    case "unknown":
      w.bytes(c.data);
      break;
  }
  const len = w.len - start;
  if (len > 255)
    throw new BgpEncodeError("encode-too-large", `capability ${c.code} longer than 255 bytes`, {
      reason: "capability-too-long",
    });
  w.set8(lenAt, len);
}
