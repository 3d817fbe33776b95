/**
 * Outbound changes of one peer waiting to be sent, grouped by their (interned) attribute set so that
 * many prefixes share one UPDATE. IPv4 prefixes are kept as flat `[addr, len]` number pairs and handed
 * to the codec's fast path without per-prefix objects.
 *
 * @packageDocumentation
 */

import type { AttrSet } from "../rib/attrs.js";
import { isBgpEncodeError } from "../wire/errors.js";
import { encodeUpdates } from "../wire/update.js";
import { Afi, type CodecContext, type PathAttributes, type Prefix } from "../wire/types.js";

/**
 * Called for a prefix whose announcement cannot be encoded for this peer, typically because its
 * attributes do not fit the peer's message size (4,096 bytes without RFC 8654 extended messages).
 */
export type Unsendable = (
  afi: Afi,
  len: number,
  v4: number,
  v6: Uint8Array | null,
  set: AttrSet,
  error: unknown,
) => void;

/** Pending announcements (by attribute set) and withdrawals (`null`) of one peer. */
export class OutQueue {
  private readonly v4 = new Map<AttrSet | null, number[]>();
  private readonly v6 = new Map<AttrSet | null, Uint8Array[]>();
  /** Prefixes queued. */
  size = 0;

  /** Queues a prefix to announce with `set`, or to withdraw when `set` is null. */
  add(afi: Afi, len: number, v4: number, v6: Uint8Array | null, set: AttrSet | null): void {
    if (afi === Afi.IPv4) {
      let l = this.v4.get(set);
      if (!l) this.v4.set(set, (l = []));
      l.push(v4, len);
    } else {
      let l = this.v6.get(set);
      if (!l) this.v6.set(set, (l = []));
      const b = new Uint8Array(17);
      b.set(v6!, 0);
      b[16] = len;
      l.push(b);
    }
    this.size++;
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.size = 0;
  }

  /**
   * Encodes everything queued into packed UPDATEs (withdrawals first within each group) and clears.
   * An announcement group that cannot be encoded (RFC 8654 §4: attributes larger than the peer's
   * message size) does not stop the others: it is retried prefix by prefix and each prefix that still
   * fails goes to `unsendable` (without one, the error is thrown as before).
   */
  drain(ctx: CodecContext, unsendable?: Unsendable): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const [set, list] of this.v4) {
      if (set === null) {
        out.push(...encodeUpdates({ ipv4Withdrawn: list }, ctx));
        continue;
      }
      const one = (l: number[]) => encodeUpdates({ attributes: set.attrs, ipv4Nlri: l }, ctx);
      try {
        out.push(...one(list));
      } catch (e) {
        if (!unsendable || !isBgpEncodeError(e)) throw e;
        for (let i = 0; i < list.length; i += 2) {
          try {
            out.push(...one([list[i]!, list[i + 1]!]));
          } catch (e1) {
            if (!isBgpEncodeError(e1)) throw e1;
            unsendable(Afi.IPv4, list[i + 1]!, list[i]!, null, set, e1);
          }
        }
      }
    }
    for (const [set, list] of this.v6) {
      const prefixes: Prefix[] = list.map((b) => ({ afi: Afi.IPv6, len: b[16]!, addr: b.subarray(0, 16) }));
      if (set === null) {
        out.push(...encodeUpdates({ withdrawn: prefixes }, ctx));
        continue;
      }
      const attributes: PathAttributes = {
        ...set.attrs,
        mpReach: { afi: Afi.IPv6, safi: 1, nextHops: [...set.nextHops], nlri: [] },
      };
      try {
        out.push(...encodeUpdates({ attributes, nlri: prefixes }, ctx));
      } catch (e) {
        if (!unsendable || !isBgpEncodeError(e)) throw e;
        for (const p of prefixes) {
          try {
            out.push(...encodeUpdates({ attributes, nlri: [p] }, ctx));
          } catch (e1) {
            if (!isBgpEncodeError(e1)) throw e1;
            unsendable(Afi.IPv6, p.len, 0, p.addr.slice(), set, e1);
          }
        }
      }
    }
    this.clear();
    return out;
  }
}
