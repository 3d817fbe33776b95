/**
 * A map that keeps about the `max` most recently written entries, for the client's caches. Two
 * generations of plain maps: writes go to the young one, and when it holds `max / 2` entries it becomes
 * the old one (the previous old one is dropped). Every operation is O(1). A single map evicting its
 * oldest key on every write instead (`keys().next()`) walks the deleted entries V8 keeps at the front
 * of the table until its next rehash, and cost 6% of an IPAM fill's CPU (#20).
 */
export class RecentMap<K, V> {
  #young = new Map<K, V>();
  #old = new Map<K, V>();
  readonly #half: number;

  /** Keeps at least `max / 2` and at most `max` entries (`max` ≥ 2). */
  constructor(max: number) {
    this.#half = Math.max(1, Math.floor(max / 2));
  }

  /** Number of entries held. */
  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** True when `key` is held. */
  has(key: K): boolean {
    return this.#young.has(key) || this.#old.has(key);
  }

  /** The value of `key`, or undefined. */
  get(key: K): V | undefined {
    // One lookup for a young entry: a key held young with the value undefined is never held old too
    // (`set` drops it there), so reading the old one then gives undefined all the same.
    const v = this.#young.get(key);
    return v !== undefined ? v : this.#old.get(key);
  }

  /** Sets `key` (as the most recent write). */
  set(key: K, value: V): this {
    this.#old.delete(key);
    this.#young.set(key, value);
    if (this.#young.size >= this.#half) {
      this.#old = this.#young;
      this.#young = new Map();
    }
    return this;
  }

  /** Drops `key`; true when it was held. */
  delete(key: K): boolean {
    const a = this.#young.delete(key);
    const b = this.#old.delete(key);
    return a || b;
  }

  /** Drops every entry. */
  clear(): void {
    this.#young.clear();
    this.#old.clear();
  }
}
