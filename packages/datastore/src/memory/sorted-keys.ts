/**
 * A sorted set of strings (code-unit order, as `<` compares), each with a value, for the memory
 * backend's list index: an array of sorted chunks, so an insert or a delete moves at most one chunk's
 * elements (not the whole kind's, as one sorted array would: a kind of a million IPAM handles) and a
 * prefix range is a binary search, then a walk over exactly the keys it returns. The values sit beside
 * the keys, so a walk hands them out without a lookup of each key elsewhere (#20).
 */

/** Largest chunk before it is split in two. */
const CHUNK = 512;

/** Index of the first element of sorted `a` that is not below `key` (also the prefix-list floor's search in bench/scale.ts). */
export function lowerBound(a: readonly string[], key: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A sorted set of strings with prefix ranges; each key carries a value (set when it is added). */
export class SortedKeys<V = undefined> {
  /** Non-empty sorted chunks; every key of a chunk is below every key of the next. */
  #chunks: string[][] = [];
  /** The values, chunk by chunk and index by index as {@link #chunks}. */
  #values: V[][] = [];
  #size = 0;

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  /** Index of the chunk `key` belongs in: the first whose last key is not below it (else the last). */
  #chunkFor(key: string): number {
    let lo = 0;
    let hi = this.#chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.#chunks[mid]!;
      if (c[c.length - 1]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Adds `key` with `value`; returns false (and keeps the value it has) when it was there already. */
  add(key: string, value: V = undefined as V): boolean {
    if (this.#chunks.length === 0) {
      this.#chunks.push([key]);
      this.#values.push([value]);
      this.#size = 1;
      return true;
    }
    const ci = this.#chunkFor(key);
    const c = this.#chunks[ci]!;
    const i = lowerBound(c, key);
    if (c[i] === key) return false;
    const v = this.#values[ci]!;
    c.splice(i, 0, key);
    v.splice(i, 0, value);
    this.#size++;
    if (c.length > CHUNK) {
      this.#chunks.splice(ci + 1, 0, c.splice(c.length >> 1));
      this.#values.splice(ci + 1, 0, v.splice(v.length >> 1));
    }
    return true;
  }

  /** Removes `key`; returns false when it was not there. */
  delete(key: string): boolean {
    if (this.#chunks.length === 0) return false;
    const ci = this.#chunkFor(key);
    const c = this.#chunks[ci]!;
    const i = lowerBound(c, key);
    if (c[i] !== key) return false;
    c.splice(i, 1);
    this.#values[ci]!.splice(i, 1);
    this.#size--;
    if (c.length === 0) {
      this.#chunks.splice(ci, 1);
      this.#values.splice(ci, 1);
    }
    return true;
  }

  /**
   * Calls `fn` with the value of each key that starts with `prefix`, in key order (every key for the
   * empty prefix): the walk of {@link withPrefix}, handing out the values beside the keys.
   */
  forEachWithPrefix(prefix: string, fn: (value: V) => void): void {
    const chunks = this.#chunks;
    if (chunks.length === 0) return;
    let ci = this.#chunkFor(prefix);
    let i = lowerBound(chunks[ci]!, prefix);
    for (; ci < chunks.length; ci++, i = 0) {
      const c = chunks[ci]!;
      const v = this.#values[ci]!;
      for (; i < c.length; i++) {
        if (!c[i]!.startsWith(prefix)) return;
        fn(v[i] as V);
      }
    }
  }

  /** The keys that start with `prefix`, in order (every key for the empty prefix). */
  *withPrefix(prefix: string): Generator<string, void, undefined> {
    if (this.#chunks.length === 0) return;
    let ci = this.#chunkFor(prefix);
    let i = lowerBound(this.#chunks[ci]!, prefix);
    for (; ci < this.#chunks.length; ci++, i = 0) {
      const c = this.#chunks[ci]!;
      for (; i < c.length; i++) {
        const k = c[i]!;
        if (!k.startsWith(prefix)) return;
        yield k;
      }
    }
  }
}
