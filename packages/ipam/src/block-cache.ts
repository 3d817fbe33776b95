/**
 * The client's block cache (block name → last known stored state) with the indexes automatic
 * assignment needs, kept up to date on every `set` and `delete`, so no allocation walks the blocks of
 * every host:
 *
 * - per (affinity, family), the blocks with a free ordinal: "my blocks with room" is one lookup;
 * - per (affinity, family), how many blocks: the `maxBlocksPerHost` count;
 * - per (pool, block size, reservations), the block-index ranges a new block may not take
 *   ({@link occupiedRanges}), updated in place when a block is added, so claiming a block does not
 *   rebuild (and re-sort) the ranges of every block in the pool.
 *
 * It is a `Map`, so code that needs every block (listing-based paths: gc, check, borrowing) reads it
 * as before.
 */
import type { CachedBlock } from "./block-rw.js";
import { type IndexRange, occupiedRanges } from "./block-walk.js";
import type { Cidr, IpFamily } from "./cidr.js";

/** One map per family, keyed by affinity: no key string to build (and hash) per lookup. */
class PerFamily<V> {
  readonly v4 = new Map<string, V>();
  readonly v6 = new Map<string, V>();
  of(family: IpFamily): Map<string, V> {
    return family === 4 ? this.v4 : this.v6;
  }
  clear(): void {
    this.v4.clear();
    this.v6.clear();
  }
}

/** Occupied ranges of one (pool, block size, reservations), kept merged and sorted. */
interface OccupiedEntry {
  pool: Cidr;
  blockSize: number;
  reservations: readonly Cidr[];
  ranges: IndexRange[];
}

/** Inserts `[start, end)` into sorted, merged `ranges`, merging it with the ranges it touches. */
function insertRange(ranges: IndexRange[], r: IndexRange): void {
  // First range whose end is not below r.start: everything before it stays apart.
  let lo = 0;
  let hi = ranges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ranges[mid]!.end < r.start) lo = mid + 1;
    else hi = mid;
  }
  let start = r.start;
  let end = r.end;
  let j = lo;
  while (j < ranges.length && ranges[j]!.start <= end) {
    if (ranges[j]!.start < start) start = ranges[j]!.start;
    if (ranges[j]!.end > end) end = ranges[j]!.end;
    j++;
  }
  ranges.splice(lo, j - lo, { start, end });
}

/** A block cache with per-host indexes (see the module comment). */
export class BlockCache extends Map<string, CachedBlock> {
  /** Family → affinity → names of blocks with at least one unallocated ordinal. */
  readonly #free = new PerFamily<Set<string>>();
  /** Family → affinity → number of blocks. */
  readonly #owned = new PerFamily<number>();
  /** `pool|blockSize` → occupied ranges, or none until first asked for. */
  readonly #occupied = new Map<string, OccupiedEntry>();

  #unindex(name: string, e: CachedBlock): void {
    const a = e.obj.spec.affinity;
    if (a == null) return;
    const owned = this.#owned.of(e.cidr.version);
    const n = (owned.get(a) ?? 1) - 1;
    if (n === 0) owned.delete(a);
    else owned.set(a, n);
    const frees = this.#free.of(e.cidr.version);
    const free = frees.get(a);
    if (free?.delete(name) && free.size === 0) frees.delete(a);
  }

  #index(name: string, e: CachedBlock): void {
    const a = e.obj.spec.affinity;
    if (a == null) return;
    const owned = this.#owned.of(e.cidr.version);
    owned.set(a, (owned.get(a) ?? 0) + 1);
    if (e.obj.spec.unallocated.length > 0) {
      const frees = this.#free.of(e.cidr.version);
      let free = frees.get(a);
      if (free === undefined) frees.set(a, (free = new Set()));
      free.add(name);
    }
  }

  override set(name: string, e: CachedBlock): this {
    const prev = super.get(name);
    if (prev !== undefined) {
      const a = prev.obj.spec.affinity;
      if (a != null && a === e.obj.spec.affinity && prev.cidr.version === e.cidr.version) {
        // The same host's block again (every allocation's write): its count stands; only its place
        // in the index of blocks with room changes (removed and added again, as below).
        const frees = this.#free.of(e.cidr.version);
        const free = frees.get(a);
        if (free?.delete(name) && free.size === 0) frees.delete(a);
        if (e.obj.spec.unallocated.length > 0) {
          if (free === undefined) frees.set(a, new Set([name]));
          else {
            if (free.size === 0) frees.set(a, free);
            free.add(name);
          }
        }
        return super.set(name, e);
      }
      this.#unindex(name, prev);
    } else
      for (const o of this.#occupied.values()) {
        const [r] = occupiedRanges(o.pool, o.blockSize, [e.cidr], []);
        if (r !== undefined) insertRange(o.ranges, r);
      }
    this.#index(name, e);
    return super.set(name, e);
  }

  override delete(name: string): boolean {
    const prev = super.get(name);
    if (prev === undefined) return false;
    this.#unindex(name, prev);
    // A freed range cannot be cut out of a merged one: rebuilt on the next claim (deletes are rare).
    this.#occupied.clear();
    return super.delete(name);
  }

  override clear(): void {
    this.#free.clear();
    this.#owned.clear();
    this.#occupied.clear();
    super.clear();
  }

  /**
   * Names of the blocks of `affinity` and `family` with at least one unallocated ordinal (the index
   * itself, or undefined when there are none: read it before changing the cache).
   */
  roomNames(affinity: string, family: IpFamily): ReadonlySet<string> | undefined {
    return this.#free.of(family).get(affinity);
  }

  /** Blocks of `affinity` and `family` with at least one unallocated ordinal (a fresh array). */
  withRoom(affinity: string, family: IpFamily): [string, CachedBlock][] {
    const out: [string, CachedBlock][] = [];
    const free = this.#free.of(family).get(affinity);
    if (free !== undefined) for (const name of free) out.push([name, super.get(name)!]);
    return out;
  }

  /** Number of blocks of `affinity` and `family`. */
  ownedCount(affinity: string, family: IpFamily): number {
    return this.#owned.of(family).get(affinity) ?? 0;
  }

  /**
   * {@link occupiedRanges} of `pool` over every cached block and `reservations`, kept from one call to
   * the next (the result is shared: do not change it).
   */
  occupied(pool: Cidr, blockSize: number, reservations: readonly Cidr[]): readonly IndexRange[] {
    const key = `${pool.text}|${blockSize}`;
    let o = this.#occupied.get(key);
    if (o === undefined || o.reservations !== reservations) {
      const cidrs: Cidr[] = [];
      for (const e of this.values()) cidrs.push(e.cidr);
      o = { pool, blockSize, reservations, ranges: occupiedRanges(pool, blockSize, cidrs, reservations) };
      this.#occupied.set(key, o);
    }
    return o.ranges;
  }
}

/** `base` (sorted, merged) with the ranges of `extra` merged in: a copy when there are any. */
export function withExtraRanges(
  base: readonly IndexRange[],
  pool: Cidr,
  blockSize: number,
  extra: readonly Cidr[],
): readonly IndexRange[] {
  const add = occupiedRanges(pool, blockSize, extra, []);
  if (add.length === 0) return base;
  const out = base.map((r) => ({ ...r }));
  for (const r of add) insertRange(out, r);
  return out;
}
