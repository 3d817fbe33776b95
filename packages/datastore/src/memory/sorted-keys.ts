/**
 * A sorted set of strings (code-unit order, as `<` compares) for the memory backend's list index: an
 * array of sorted chunks, so an insert or a delete moves at most one chunk's elements (not the whole
 * kind's, as one sorted array would: a kind of a million IPAM handles) and a prefix range is a binary
 * search, then a walk over exactly the keys it returns.
 */

/** Largest chunk before it is split in two. */
const CHUNK = 512;

/** Index of the first element of sorted `a` that is not below `key`. */
function lowerBound(a: readonly string[], key: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A sorted set of strings with prefix ranges. */
export class SortedKeys {
  /** Non-empty sorted chunks; every key of a chunk is below every key of the next. */
  #chunks: string[][] = [];
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

  /** Adds `key`; returns false when it was there already. */
  add(key: string): boolean {
    if (this.#chunks.length === 0) {
      this.#chunks.push([key]);
      this.#size = 1;
      return true;
    }
    const ci = this.#chunkFor(key);
    const c = this.#chunks[ci]!;
    const i = lowerBound(c, key);
    if (c[i] === key) return false;
    c.splice(i, 0, key);
    this.#size++;
    if (c.length > CHUNK) this.#chunks.splice(ci + 1, 0, c.splice(c.length >> 1));
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
    this.#size--;
    if (c.length === 0) this.#chunks.splice(ci, 1);
    return true;
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
