/**
 * Applies one decoded UPDATE to the RIB on behalf of a peer: withdrawals, RFC 7606 treat-as-withdraw,
 * then announcements, walking the prefix sections of the message bytes without allocating per IPv4
 * prefix.
 *
 * @packageDocumentation
 */

import type { Rib, RibPeer, RouteChange } from "../rib/rib.js";
import { forEachIPv4Prefix, forEachPrefix } from "../wire/prefix.js";
import { Afi } from "../wire/types.js";
import type { UpdateDecodeResult } from "../wire/update.js";

/** The 16 address bytes of an IPv6 prefix found at `off` in `b` (host bits cleared). */
export function v6Bytes(b: Uint8Array, off: number, len: number): Uint8Array {
  const out = new Uint8Array(16);
  const nb = (len + 7) >> 3;
  for (let i = 0; i < nb; i++) out[i] = b[off + i]!;
  if (len & 7) out[nb - 1]! &= (0xff << (8 - (len & 7))) & 0xff;
  return out;
}

interface Section {
  start: number;
  end: number;
  addPath: boolean;
}

/**
 * Applies `r` (decoded from `bytes` with `prefixes: "sections"`) for peer `rp`, reporting every
 * best-path change to `onChange`. Families not in `families` ("afi/safi") are ignored (RFC 4760 §7).
 * Returns the number of prefixes announced.
 */
export function applyUpdate(
  rib: Rib,
  rp: RibPeer,
  families: ReadonlySet<string>,
  bytes: Uint8Array,
  r: UpdateDecodeResult,
  onChange: (c: RouteChange) => void,
): number {
  const s = r.sections;
  const report = (c: RouteChange | null) => {
    if (c) onChange(c);
  };
  const withdrawV4 = (addr: number, len: number, pathId: number) =>
    report(rib.withdraw(rp, Afi.IPv4, len, addr, null, pathId));
  const withdraw = (sec: Section, afi: number) => {
    if (sec.end <= sec.start || !families.has(`${afi}/1`)) return;
    if (afi === Afi.IPv4) forEachIPv4Prefix(bytes, sec.start, sec.end, sec.addPath, withdrawV4);
    else if (afi === Afi.IPv6) {
      forEachPrefix(bytes, sec.start, sec.end, afi, sec.addPath, (b, off, len, pathId) =>
        report(rib.withdraw(rp, Afi.IPv6, len, 0, v6Bytes(b, off, len), pathId)),
      );
    }
  };
  withdraw(s.withdrawn, Afi.IPv4);
  if (s.mpUnreach && s.mpUnreach.safi === 1) withdraw(s.mpUnreach, s.mpUnreach.afi);
  if (r.action === "treat-as-withdraw") {
    // RFC 7606 §2: the announced prefixes are handled as withdrawn.
    withdraw(s.nlri, Afi.IPv4);
    if (s.mpReach && s.mpReach.safi === 1) withdraw(s.mpReach, s.mpReach.afi);
    return 0;
  }
  const a = r.update.attributes;
  let n = 0;
  if (s.nlri.end > s.nlri.start && a.nextHop !== undefined && families.has("1/1")) {
    const set = rib.internFromPeer(rp, a, [a.nextHop]);
    n += forEachIPv4Prefix(bytes, s.nlri.start, s.nlri.end, s.nlri.addPath, (addr, len, pathId) =>
      report(rib.announce(rp, Afi.IPv4, len, addr, null, pathId, set)),
    );
    rib.attrs.dropIfUnused(set);
  }
  const mp = s.mpReach;
  if (mp && mp.safi === 1 && mp.end > mp.start && a.mpReach && families.has(`${mp.afi}/1`)) {
    const set = rib.internFromPeer(rp, a, a.mpReach.nextHops);
    if (mp.afi === Afi.IPv4) {
      n += forEachIPv4Prefix(bytes, mp.start, mp.end, mp.addPath, (addr, len, pathId) =>
        report(rib.announce(rp, Afi.IPv4, len, addr, null, pathId, set)),
      );
    } else if (mp.afi === Afi.IPv6) {
      n += forEachPrefix(bytes, mp.start, mp.end, Afi.IPv6, mp.addPath, (b, off, len, pathId) =>
        report(rib.announce(rp, Afi.IPv6, len, 0, v6Bytes(b, off, len), pathId, set)),
      );
    }
    rib.attrs.dropIfUnused(set);
  }
  return n;
}
