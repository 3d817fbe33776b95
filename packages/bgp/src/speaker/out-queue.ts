/**
 * Outbound changes of one peer waiting to be sent, grouped by their (interned) attribute set so that
 * many prefixes share one UPDATE. IPv4 prefixes are kept as flat `[addr, len]` number pairs and handed
 * to the codec's fast path without per-prefix objects.
 *
 * Only the last change queued for a prefix goes on the wire: the groups are sent one after another, so
 * an earlier change of the same prefix sent after a later one (withdraw X, announce P, withdraw P sent
 * as "withdraw X, P; announce P") would leave the peer with what our Adj-RIB-Out no longer holds.
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

/**
 * IPv4 prefix → last queued change, an open-addressing hash table over typed arrays: this runs once per
 * prefix sent (a million for a full table), where a `Map` keyed by `addr * 64 + len` cost about as much
 * again as the encoding (in-process run, 1M prefixes in 16,384-prefix batches on a loaded 2-core machine:
 * 0.6-1.3 s for the Map, 0.6-1.1 s for the encoding; this table adds about 0.3 s).
 */
export class V4Slots<T> {
  private addrs = new Int32Array(1024);
  /** Prefix length + 1; 0 marks an empty slot. */
  private lens = new Uint8Array(1024);
  private values: (T | undefined)[] = new Array(1024);
  size = 0;

  private slot(addr: number, len: number): number {
    const mask = this.lens.length - 1;
    let i = (Math.imul(addr ^ (len << 24), 0x9e3779b1) >>> 16) & mask;
    for (;;) {
      const l = this.lens[i]!;
      if (l === 0 || (l === len + 1 && this.addrs[i] === addr)) return i;
      i = (i + 1) & mask;
    }
  }

  get(v4: number, len: number): T | undefined {
    const i = this.slot(v4 | 0, len);
    return this.lens[i] === 0 ? undefined : this.values[i];
  }

  /** Stores `set` for the prefix; returns what it held (undefined: nothing). */
  swap(v4: number, len: number, set: T): T | undefined {
    const addr = v4 | 0;
    let i = this.slot(addr, len);
    if (this.lens[i] !== 0) {
      const prev = this.values[i];
      this.values[i] = set;
      return prev;
    }
    if ((this.size + 1) * 2 > this.lens.length) {
      this.grow();
      i = this.slot(addr, len);
    }
    this.addrs[i] = addr;
    this.lens[i] = len + 1;
    this.values[i] = set;
    this.size++;
    return undefined;
  }

  private grow(): void {
    const { addrs, lens, values } = this;
    const n = lens.length * 2;
    this.addrs = new Int32Array(n);
    this.lens = new Uint8Array(n);
    this.values = new Array(n);
    for (let j = 0; j < lens.length; j++) {
      if (lens[j] === 0) continue;
      const i = this.slot(addrs[j]!, lens[j]! - 1);
      this.addrs[i] = addrs[j]!;
      this.lens[i] = lens[j]!;
      this.values[i] = values[j];
    }
  }

  clear(): void {
    if (this.size === 0) return;
    this.lens.fill(0);
    this.values.fill(undefined);
    this.size = 0;
  }
}

/**
 * UPDATEs encoded during one flush of many peers, to be reused by every peer whose queue holds the same
 * IPv4 prefixes for the same attribute set under an equivalent codec context: a route reflector sends
 * each client's UPDATE to every other client, so encoding it once instead of once per client saves the
 * encoding and the garbage of the copies. Valid for one flush only (see `flushAll`).
 */
export type SharedEncodings = Map<AttrSet | null, { ctx: string; list: number[]; msgs: Uint8Array[] }[]>;

/** What the encoding depends on in a codec context, as text (cached per context object). */
const ctxKeys = new WeakMap<CodecContext, string>();
export function ctxKey(ctx: CodecContext): string {
  let k = ctxKeys.get(ctx);
  if (k === undefined) {
    k = `${ctx.asn4}|${ctx.maxMessageSize}|${[...ctx.addPathSend].sort()}|${[...ctx.extendedNextHop].sort()}`;
    ctxKeys.set(ctx, k);
  }
  return k;
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Pending announcements (by attribute set) and withdrawals (`null`) of one peer. */
export class OutQueue {
  private readonly v4 = new Map<AttrSet | null, number[]>();
  private readonly v6 = new Map<AttrSet | null, Uint8Array[]>();
  /** The last change queued per prefix (IPv6 keyed by hex of address and length). */
  private readonly last4 = new V4Slots<AttrSet | null>();
  private readonly last6 = new Map<string, AttrSet | null>();
  /** True once a prefix was queued again with another change: groups then hold superseded entries. */
  private superseded = false;

  /** Distinct prefixes queued. */
  get size(): number {
    return this.last4.size + this.last6.size;
  }

  /** Queues a prefix to announce with `set`, or to withdraw when `set` is null; replaces its earlier change. */
  add(afi: Afi, len: number, v4: number, v6: Uint8Array | null, set: AttrSet | null): void {
    if (afi === Afi.IPv4) {
      const prev = this.last4.swap(v4, len, set);
      if (prev !== undefined) {
        if (prev === set) return;
        this.superseded = true;
      }
      let l = this.v4.get(set);
      if (!l) this.v4.set(set, (l = []));
      l.push(v4, len);
    } else {
      const b = new Uint8Array(17);
      b.set(v6!, 0);
      b[16] = len;
      const key = Buffer.from(b.buffer, b.byteOffset, 17).toString("hex");
      const prev = this.last6.get(key);
      if (prev !== undefined) {
        if (prev === set) return;
        this.superseded = true;
      }
      this.last6.set(key, set);
      let l = this.v6.get(set);
      if (!l) this.v6.set(set, (l = []));
      l.push(b);
    }
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.last4.clear();
    this.last6.clear();
    this.superseded = false;
  }

  /** `list` without the entries a later change of the same prefix replaced. */
  private current4(set: AttrSet | null, list: number[]): number[] {
    if (!this.superseded) return list;
    const out: number[] = [];
    for (let i = 0; i < list.length; i += 2) {
      if (this.last4.get(list[i]!, list[i + 1]!) === set) out.push(list[i]!, list[i + 1]!);
    }
    return out;
  }

  private current6(set: AttrSet | null, list: Uint8Array[]): Uint8Array[] {
    if (!this.superseded) return list;
    return list.filter(
      (b) => this.last6.get(Buffer.from(b.buffer, b.byteOffset, 17).toString("hex")) === set,
    );
  }

  /**
   * Encodes everything queued into packed UPDATEs (withdrawals first within each group) and clears.
   * An announcement group that cannot be encoded (RFC 8654 §4: attributes larger than the peer's
   * message size) does not stop the others: it is retried prefix by prefix and each prefix that still
   * fails goes to `unsendable` (without one, the error is thrown as before).
   */
  drain(ctx: CodecContext, unsendable?: Unsendable, shared?: SharedEncodings): Uint8Array[] {
    const out: Uint8Array[] = [];
    const key = shared && ctxKey(ctx);
    for (const [set, all] of this.v4) {
      const list = this.current4(set, all);
      if (list.length === 0) continue;
      const earlier = shared?.get(set)?.find((e) => e.ctx === key && sameList(e.list, list));
      if (earlier !== undefined) {
        for (const m of earlier.msgs) out.push(m);
        continue;
      }
      const remember = (msgs: Uint8Array[]) => {
        if (shared === undefined || key === undefined) return;
        let l = shared.get(set);
        if (l === undefined) shared.set(set, (l = []));
        l.push({ ctx: key, list, msgs });
      };
      if (set === null) {
        const msgs = encodeUpdates({ ipv4Withdrawn: list }, ctx);
        remember(msgs);
        out.push(...msgs);
        continue;
      }
      const one = (l: number[]) => encodeUpdates({ attributes: set.attrs, ipv4Nlri: l }, ctx);
      try {
        const msgs = one(list);
        remember(msgs);
        out.push(...msgs);
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
    for (const [set, all] of this.v6) {
      const list = this.current6(set, all);
      if (list.length === 0) continue;
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
