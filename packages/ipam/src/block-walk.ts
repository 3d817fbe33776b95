/**
 * Choosing a free block to claim without enumerating the pool. A pool with n blocks is walked from a
 * host-seeded start index (so hosts spread out, as in Calico), jumping over runs of occupied block
 * indices; the walk takes at most (occupied runs + 1) steps, however large n is (a /64 pool of /122
 * blocks has 2^58 of them).
 */
import { type Cidr, cidrFromValue, cidrLast, familyBits } from "./cidr.js";

/** FNV-1a, 64-bit: a stable, dependency-free seed from a string. */
export function fnv1a64(text: string): bigint {
  let h = 0xcbf29ce484222325n;
  const bytes = new TextEncoder().encode(text);
  for (const b of bytes) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

/** Number of blocks of size `blockPrefix` in `pool`. */
export function blockCount(pool: Cidr, blockPrefix: number): bigint {
  return 1n << BigInt(blockPrefix - pool.prefixLength);
}

/** The i-th block of a pool. */
export function blockAt(pool: Cidr, blockPrefix: number, index: bigint): Cidr {
  const shift = BigInt(familyBits(pool.version) - blockPrefix);
  return cidrFromValue(pool.version, pool.network + (index << shift), blockPrefix);
}

/** A half-open range `[start, end)` of block indices. */
export interface IndexRange {
  start: bigint;
  end: bigint;
}

/**
 * Block-index ranges that may not be claimed: any block overlapping an existing block, and any block
 * entirely covered by a reservation (a partly reserved block is still useful). Sorted and merged.
 */
export function occupiedRanges(
  pool: Cidr,
  blockPrefix: number,
  existing: readonly Cidr[],
  reserved: readonly Cidr[],
): IndexRange[] {
  const shift = BigInt(familyBits(pool.version) - blockPrefix);
  const n = blockCount(pool, blockPrefix);
  const poolLast = cidrLast(pool);
  const ranges: IndexRange[] = [];
  const clamp = (s: bigint, e: bigint) => {
    const start = s < 0n ? 0n : s;
    const end = e > n ? n : e;
    if (start < end) ranges.push({ start, end });
  };
  for (const c of existing) {
    if (c.version !== pool.version || cidrLast(c) < pool.network || c.network > poolLast) continue;
    clamp((c.network - pool.network) >> shift, ((cidrLast(c) - pool.network) >> shift) + 1n);
  }
  const blockAddrs = 1n << shift;
  for (const r of reserved) {
    if (r.version !== pool.version || cidrLast(r) < pool.network || r.network > poolLast) continue;
    // Round the covered span inwards to whole blocks.
    const first = r.network - pool.network;
    const lastExcl = cidrLast(r) - pool.network + 1n;
    clamp((first + blockAddrs - 1n) >> shift, lastExcl >> shift);
  }
  ranges.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const merged: IndexRange[] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r.start <= last.end) {
      if (r.end > last.end) last.end = r.end;
    } else merged.push({ ...r });
  }
  return merged;
}

function rangeContaining(ranges: readonly IndexRange[], i: bigint): IndexRange | undefined {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (i < r.start) hi = mid - 1;
    else if (i >= r.end) lo = mid + 1;
    else return r;
  }
  return undefined;
}

/**
 * Candidate free blocks in walk order, starting at `seed mod n` and wrapping once round the pool.
 * Lazy: the caller takes as many as it needs.
 */
export function* freeBlockWalk(
  pool: Cidr,
  blockPrefix: number,
  seed: bigint,
  occupied: readonly IndexRange[],
): Generator<Cidr, void, undefined> {
  const n = blockCount(pool, blockPrefix);
  let i = seed % n;
  let covered = 0n;
  while (covered < n) {
    const r = rangeContaining(occupied, i);
    if (r === undefined) {
      yield blockAt(pool, blockPrefix, i);
      covered += 1n;
      i = i + 1n === n ? 0n : i + 1n;
    } else {
      covered += r.end - i;
      i = r.end === n ? 0n : r.end;
    }
  }
}
