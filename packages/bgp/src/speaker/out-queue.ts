/**
 * Outbound changes of one peer waiting to be sent, grouped by their (interned) attribute set so that
 * many prefixes share one UPDATE. IPv4 prefixes are kept as flat `[addr, len]` number pairs and handed
 * to the codec's fast path without per-prefix objects.
 *
 * @packageDocumentation
 */

import type { AttrSet } from "../rib/attrs.js";
import { encodeUpdates } from "../wire/update.js";
import { Afi, type CodecContext, type PathAttributes, type Prefix } from "../wire/types.js";

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

  /** Encodes everything queued into packed UPDATEs (withdrawals first within each group) and clears. */
  drain(ctx: CodecContext): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const [set, list] of this.v4) {
      if (set === null) out.push(...encodeUpdates({ ipv4Withdrawn: list }, ctx));
      else out.push(...encodeUpdates({ attributes: set.attrs, ipv4Nlri: list }, ctx));
    }
    for (const [set, list] of this.v6) {
      const prefixes: Prefix[] = list.map((b) => ({ afi: Afi.IPv6, len: b[16]!, addr: b.subarray(0, 16) }));
      if (set === null) out.push(...encodeUpdates({ withdrawn: prefixes }, ctx));
      else {
        const attributes: PathAttributes = {
          ...set.attrs,
          mpReach: { afi: Afi.IPv6, safi: 1, nextHops: [...set.nextHops], nlri: [] },
        };
        out.push(...encodeUpdates({ attributes, nlri: prefixes }, ctx));
      }
    }
    this.clear();
    return out;
  }
}
