/**
 * The codec context: negotiated capabilities as data. Build one from the two OPENs with
 * {@link negotiateCodecContext}, or by hand with {@link createCodecContext}.
 *
 * @packageDocumentation
 */
import { MAX_EXTENDED_MESSAGE_SIZE, MAX_MESSAGE_SIZE } from "./constants.js";
import type { Capability, CodecContext, OpenMessage } from "./types.js";

/** The key of a family in {@link CodecContext} sets: `"afi/safi"`, e.g. `"1/1"` for IPv4 unicast. */
export function familyKey(afi: number, safi: number): string {
  return `${afi}/${safi}`;
}

const EMPTY: ReadonlySet<string> = Object.freeze(new Set<string>());

/**
 * Defaults of {@link createCodecContext}: 4-octet AS on (every current implementation negotiates it),
 * 4096-byte messages, no ADD-PATH, no extended next hop.
 */
export const DEFAULT_CODEC_CONTEXT: Readonly<CodecContext> = Object.freeze({
  asn4: true,
  maxMessageSize: MAX_MESSAGE_SIZE,
  addPathReceive: EMPTY,
  addPathSend: EMPTY,
  extendedNextHop: EMPTY,
});

/** A codec context from {@link DEFAULT_CODEC_CONTEXT} with `overrides` applied. */
export function createCodecContext(overrides: Partial<CodecContext> = {}): CodecContext {
  return { ...DEFAULT_CODEC_CONTEXT, ...overrides };
}

function caps<K extends Capability["kind"]>(open: OpenMessage, kind: K): Extract<Capability, { kind: K }>[] {
  return open.capabilities.filter((c): c is Extract<Capability, { kind: K }> => c.kind === kind);
}

/**
 * What both OPENs agree on (RFC 5492: a capability is in use only when both sides advertise it).
 * ADD-PATH: we receive path IDs for a family when we said receive (1 or 3) and the peer said send (2 or 3),
 * and the reverse for sending (RFC 7911 §4). Extended next hop: families both advertised with the same
 * next-hop AFI.
 */
export function negotiateCodecContext(local: OpenMessage, remote: OpenMessage): CodecContext {
  const asn4 = caps(local, "four-octet-as").length > 0 && caps(remote, "four-octet-as").length > 0;
  const extMsg = caps(local, "extended-message").length > 0 && caps(remote, "extended-message").length > 0;
  const addPathMode = (open: OpenMessage) => {
    const m = new Map<string, number>();
    for (const c of caps(open, "add-path"))
      for (const f of c.families) m.set(familyKey(f.afi, f.safi), f.sendReceive);
    return m;
  };
  const lap = addPathMode(local);
  const rap = addPathMode(remote);
  const addPathReceive = new Set<string>();
  const addPathSend = new Set<string>();
  for (const [k, mode] of lap) {
    const peer = rap.get(k) ?? 0;
    if (mode & 1 && peer & 2) addPathReceive.add(k);
    if (mode & 2 && peer & 1) addPathSend.add(k);
  }
  const enh = (open: OpenMessage) => {
    const s = new Set<string>();
    for (const c of caps(open, "extended-next-hop"))
      for (const f of c.families) s.add(`${familyKey(f.afi, f.safi)}/${f.nextHopAfi}`);
    return s;
  };
  const lenh = enh(local);
  const extendedNextHop = new Set<string>();
  for (const k of enh(remote)) if (lenh.has(k)) extendedNextHop.add(k.slice(0, k.lastIndexOf("/")));
  return {
    asn4,
    maxMessageSize: extMsg ? MAX_EXTENDED_MESSAGE_SIZE : MAX_MESSAGE_SIZE,
    addPathReceive,
    addPathSend,
    extendedNextHop,
  };
}
