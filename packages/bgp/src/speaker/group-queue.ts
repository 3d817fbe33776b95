/**
 * Outbound changes of one update group (peers that export alike, under one codec context) waiting to be
 * sent, and their encoding into ONE stream of UPDATEs that every member reads, skipping only what must
 * differ per member (FRR's update-group "packet queue", GoBGP's and BIRD's shared export).
 *
 * What differs: a route is never sent back to the peer its best path came from (split horizon; for a
 * route reflector, RFC 4456: a client's own routes are not reflected to it). So each queued change
 * remembers the source of the group's entry before the batch (`src0`) and after it (`src1`); the
 * encoding puts announcements in segments by (attribute set, source) and withdrawals in segments by
 * previous source, and a member skips the segments of its own routes. The one member whose route
 * replaced another peer's (it had the other's route, it must not get its own) gets a withdrawal of its
 * own, encoded for it alone.
 *
 * No I/O: {@link GroupQueue.drain} returns bytes and which member skips which part.
 *
 * @packageDocumentation
 */

import type { AttrSet } from "../rib/attrs.js";
import { isBgpEncodeError } from "../wire/errors.js";
import { encodeUpdates } from "../wire/update.js";
import { Afi, type CodecContext, type PathAttributes, type Prefix } from "../wire/types.js";
import { V4Slots } from "./out-queue.js";

/** No source: the entry is absent (or, for a source, the route is ours or no member's). */
export const NO_SOURCE = -1;

/**
 * Called for an announcement that cannot be encoded under the group's codec context (RFC 8654 §4: its
 * attributes do not fit the message size). Returns true when the caller removed it from the group's
 * Adj-RIB-Out: the members that had the prefix before are then sent a withdrawal.
 */
export type GroupUnsendable = (
  afi: Afi,
  len: number,
  v4: number,
  v6: Uint8Array | null,
  set: AttrSet,
  src: number,
  error: unknown,
) => boolean;

/** A contiguous part of {@link GroupMessages.bytes}: `messages` UPDATEs every member but `skip` reads. */
export interface GroupSegment {
  /** RIB index of the member that must not read this part, or {@link NO_SOURCE}. */
  readonly skip: number;
  readonly start: number;
  readonly end: number;
  readonly messages: number;
}

/** One flush of a group, encoded once for all members. */
export interface GroupMessages {
  /** Every UPDATE of the flush, back to back. */
  readonly bytes: Uint8Array;
  readonly segments: readonly GroupSegment[];
  /** UPDATEs for one member only (by RIB index): withdrawals of routes that became its own. */
  readonly only: ReadonlyMap<number, Uint8Array[]>;
  /** Announcements that could not be encoded (see {@link GroupUnsendable}). */
  readonly unsendable: number;
  /** The first encoding error behind `unsendable`. */
  readonly error: unknown;
}

/** Prefixes of one segment: flat IPv4 `[addr, len]` pairs and IPv6 prefixes. */
interface Part {
  v4: number[];
  v6: Prefix[];
}

const newPart = (): Part => ({ v4: [], v6: [] });

function partOf<K>(m: Map<K, Part>, k: K): Part {
  let p = m.get(k);
  if (p === undefined) m.set(k, (p = newPart()));
  return p;
}

function v6Hex(addr: Uint8Array, len: number): string {
  return `${Buffer.from(addr.buffer, addr.byteOffset, 16).toString("hex")}/${len}`;
}

/** Pending changes of one update group: per prefix, the group's entry at the last flush and now. */
export class GroupQueue {
  private readonly index4 = new V4Slots<number>();
  private readonly index6 = new Map<string, number>();
  private afi: Afi[] = [];
  private len: number[] = [];
  private v4: number[] = [];
  private v6: (Uint8Array | null)[] = [];
  private set0: (AttrSet | null)[] = [];
  private src0: number[] = [];
  private set1: (AttrSet | null)[] = [];
  private src1: number[] = [];

  /** Distinct prefixes queued. */
  get size(): number {
    return this.afi.length;
  }

  /**
   * Queues a change of the group's entry for a prefix from `set0` (advertised by the last flush, from
   * source `src0`) to `set1` (from `src1`; null: withdrawn). A later change of a prefix already queued
   * keeps the first `set0`/`src0`: that is what the members still have.
   */
  add(
    afi: Afi,
    len: number,
    v4: number,
    v6: Uint8Array | null,
    set0: AttrSet | null,
    src0: number,
    set1: AttrSet | null,
    src1: number,
  ): void {
    const n = this.afi.length;
    let i: number | undefined;
    if (afi === Afi.IPv4) i = this.index4.swap(v4, len, n);
    else {
      const k = v6Hex(v6!, len);
      i = this.index6.get(k);
      if (i === undefined) this.index6.set(k, n);
    }
    if (i !== undefined) {
      if (afi === Afi.IPv4) this.index4.swap(v4, len, i);
      this.set1[i] = set1;
      this.src1[i] = src1;
      return;
    }
    this.afi.push(afi);
    this.len.push(len);
    this.v4.push(v4);
    this.v6.push(afi === Afi.IPv4 ? null : v6!.slice(0, 16));
    this.set0.push(set0);
    this.src0.push(src0);
    this.set1.push(set1);
    this.src1.push(src1);
  }

  clear(): void {
    this.index4.clear();
    this.index6.clear();
    this.afi = [];
    this.len = [];
    this.v4 = [];
    this.v6 = [];
    this.set0 = [];
    this.src0 = [];
    this.set1 = [];
    this.src1 = [];
  }

  /**
   * Encodes what is queued once for every member and clears. Announcements are packed per attribute
   * set; a set that does not fit is retried prefix by prefix and each prefix that still fails goes to
   * `unsendable` (without one, the error is thrown).
   */
  drain(ctx: CodecContext, unsendable?: GroupUnsendable): GroupMessages {
    // Withdrawals by previous source; announcements by set, then source; withdrawals for one member.
    const withdraw = new Map<number, Part>();
    const announce = new Map<AttrSet, Map<number, Part>>();
    const only = new Map<number, Part>();
    const n = this.afi.length;
    for (let i = 0; i < n; i++) {
      const set0 = this.set0[i]!;
      const src0 = this.src0[i]!;
      const set1 = this.set1[i]!;
      const src1 = this.src1[i]!;
      if (set0 === set1 && src0 === src1) continue;
      let part: Part;
      if (set1 === null) {
        if (set0 === null) continue;
        part = partOf(withdraw, src0);
      } else {
        let bySrc = announce.get(set1);
        if (bySrc === undefined) announce.set(set1, (bySrc = new Map()));
        part = partOf(bySrc, src1);
        // Its own route replaced another peer's: the source loses the other's route.
        if (set0 !== null && src0 !== src1 && src1 !== NO_SOURCE) this.push(partOf(only, src1), i);
      }
      this.push(part, i);
    }

    const msgs: Uint8Array[] = [];
    const segments: { skip: number; first: number; count: number }[] = [];
    const segment = (skip: number, list: Uint8Array[]) => {
      if (list.length === 0) return;
      segments.push({ skip, first: msgs.length, count: list.length });
      for (const m of list) msgs.push(m);
    };
    for (const [src, p] of withdraw) segment(src, encodeWithdrawals(p, ctx));
    let failed = 0;
    let error: unknown;
    // Announcements that could not be sent, removed from the group's Adj-RIB-Out: withdrawn from every
    // member that had them (not from their previous source, which never had them).
    const late = new Map<number, Part>();
    for (const [set, bySrc] of announce) {
      for (const [src, p] of bySrc) {
        segment(
          src,
          encodeAnnouncements(
            set,
            p,
            ctx,
            unsendable &&
              ((afi, len, v4, v6, e) => {
                failed++;
                error ??= e;
                if (!unsendable(afi, len, v4, v6, set, src, e)) return;
                const i = this.find(afi, len, v4, v6);
                if (i !== undefined && this.set0[i] !== null) {
                  const w = partOf(late, this.src0[i]!);
                  if (afi === Afi.IPv4) w.v4.push(v4, len);
                  else w.v6.push({ afi, len, addr: v6! });
                }
              }),
          ),
        );
      }
    }
    for (const [src, p] of late) segment(src, encodeWithdrawals(p, ctx));
    const onlyMsgs = new Map<number, Uint8Array[]>();
    for (const [m, p] of only) onlyMsgs.set(m, encodeWithdrawals(p, ctx));
    this.clear();

    let total = 0;
    for (const m of msgs) total += m.length;
    const bytes = new Uint8Array(total);
    const offsets: number[] = [];
    let off = 0;
    for (const m of msgs) {
      offsets.push(off);
      bytes.set(m, off);
      off += m.length;
    }
    offsets.push(off);
    return {
      bytes,
      segments: segments.map((s) => ({
        skip: s.skip,
        start: offsets[s.first]!,
        end: offsets[s.first + s.count]!,
        messages: s.count,
      })),
      only: onlyMsgs,
      unsendable: failed,
      error,
    };
  }

  private push(p: Part, i: number): void {
    if (this.afi[i] === Afi.IPv4) p.v4.push(this.v4[i]!, this.len[i]!);
    else p.v6.push({ afi: Afi.IPv6, len: this.len[i]!, addr: this.v6[i]! });
  }

  private find(afi: Afi, len: number, v4: number, v6: Uint8Array | null): number | undefined {
    return afi === Afi.IPv4 ? this.index4.get(v4, len) : this.index6.get(v6Hex(v6!, len));
  }
}

function encodeWithdrawals(p: Part, ctx: CodecContext): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (p.v4.length > 0) out.push(...encodeUpdates({ ipv4Withdrawn: p.v4 }, ctx));
  if (p.v6.length > 0) out.push(...encodeUpdates({ withdrawn: p.v6 }, ctx));
  return out;
}

type Failed = (afi: Afi, len: number, v4: number, v6: Uint8Array | null, error: unknown) => void;

/** UPDATEs announcing `p` with `set`; prefixes that do not fit go to `failed` (without one: thrown). */
function encodeAnnouncements(set: AttrSet, p: Part, ctx: CodecContext, failed?: Failed): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (p.v4.length > 0) {
    const one = (l: number[]) => encodeUpdates({ attributes: set.attrs, ipv4Nlri: l }, ctx);
    try {
      out.push(...one(p.v4));
    } catch (e) {
      if (!failed || !isBgpEncodeError(e)) throw e;
      for (let i = 0; i < p.v4.length; i += 2) {
        try {
          out.push(...one([p.v4[i]!, p.v4[i + 1]!]));
        } catch (e1) {
          if (!isBgpEncodeError(e1)) throw e1;
          failed(Afi.IPv4, p.v4[i + 1]!, p.v4[i]!, null, e1);
        }
      }
    }
  }
  if (p.v6.length > 0) {
    const attributes: PathAttributes = {
      ...set.attrs,
      mpReach: { afi: Afi.IPv6, safi: 1, nextHops: [...set.nextHops], nlri: [] },
    };
    try {
      out.push(...encodeUpdates({ attributes, nlri: p.v6 }, ctx));
    } catch (e) {
      if (!failed || !isBgpEncodeError(e)) throw e;
      for (const q of p.v6) {
        try {
          out.push(...encodeUpdates({ attributes, nlri: [q] }, ctx));
        } catch (e1) {
          if (!isBgpEncodeError(e1)) throw e1;
          failed(Afi.IPv6, q.len, 0, q.addr, e1);
        }
      }
    }
  }
  return out;
}
