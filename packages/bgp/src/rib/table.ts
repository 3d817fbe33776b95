/**
 * A prefix-keyed table with compact keys. IPv4 prefixes live in one open-addressing {@link U32Map} per
 * prefix length keyed by the network number (`addr >>> (32 - len)`); IPv6 prefixes (far fewer) in a
 * `Map` per length keyed by the hex text of their significant bytes. No per-route key objects, and a
 * longest-prefix match is a walk down the lengths.
 *
 * @packageDocumentation
 */

import { Afi } from "../wire/types.js";

/** A prefix as the RIB sees it: IPv4 as a number, IPv6 as 16 bytes. */
export interface RibPrefix {
  readonly afi: Afi;
  readonly len: number;
  /** IPv4 address as an unsigned 32-bit number (host bits zero); 0 for IPv6. */
  readonly v4: number;
  /** IPv6 address bytes (host bits zero); null for IPv4. */
  readonly v6: Uint8Array | null;
}

/** Network number of an IPv4 prefix: the map key. */
export function v4Key(addr: number, len: number): number {
  return len === 0 ? 0 : addr >>> (32 - len);
}

/** Address of an IPv4 key. */
export function v4FromKey(key: number, len: number): number {
  return len === 0 ? 0 : len === 32 ? key : (key * 2 ** (32 - len)) >>> 0;
}

/** Map key of an IPv6 prefix: hex of its significant bytes. */
export function v6Key(addr: Uint8Array, len: number): string {
  const nb = (len + 7) >> 3;
  let s = "";
  for (let i = 0; i < nb; i++) {
    let b = addr[i]!;
    if (i === nb - 1 && len & 7) b &= (0xff << (8 - (len & 7))) & 0xff;
    s += (b < 16 ? "0" : "") + b.toString(16);
  }
  return s;
}

/** Address bytes of an IPv6 key. */
export function v6FromKey(key: string): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < key.length / 2; i++) out[i] = Number.parseInt(key.slice(i * 2, i * 2 + 2), 16);
  return out;
}

// Decimal text of every octet and prefix length: a full table formats a million prefixes (one per
// best-path event), and table lookups are cheaper than number-to-string conversions.
const DEC = Array.from({ length: 256 }, (_, i) => String(i));
const OCTET_DOT = DEC.map((d) => `${d}.`);
const SLASH_LEN = Array.from({ length: 129 }, (_, i) => `/${i}`);

/** Text of a {@link RibPrefix}, e.g. `10.0.0.0/8`. */
export function formatRibPrefix(p: RibPrefix): string {
  if (p.afi === Afi.IPv4) {
    const a = p.v4;
    return (
      OCTET_DOT[a >>> 24]! +
      OCTET_DOT[(a >>> 16) & 255]! +
      OCTET_DOT[(a >>> 8) & 255]! +
      DEC[a & 255]! +
      SLASH_LEN[p.len]!
    );
  }
  const b = p.v6!;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // Compress the longest run of zero groups (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const text =
    best < 0
      ? groups.join(":")
      : `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
  return `${text}/${p.len}`;
}

let seeds = 0x2545f491;
function nextSeed(): number {
  seeds = (Math.imul(seeds, 0x9e3779b1) + 0x7f4a7c15) | 0;
  return seeds;
}

/**
 * An open-addressing hash map from unsigned 32-bit keys to values (linear probing, a seeded murmur3
 * finaliser over blocks of 8 neighbouring keys, backward-shift deletion). Keys live in a `Uint32Array`, values in one array: no per-entry objects and
 * one probe sequence per operation, about twice as fast as a `Map` at a million entries. Keys must be
 * unsigned 32-bit integers.
 */
export class U32Map<V> {
  private bits = 4;
  private keys = new Uint32Array(1 << 4);
  private vals: (V | undefined)[] = new Array(1 << 4).fill(undefined);
  /** Number of entries. */
  size = 0;

  /**
   * Every map hashes with its own seed: walking one map in slot order and inserting into another (a
   * full-table export into an Adj-RIB-Out) would otherwise pile the keys into one probe run.
   */
  private readonly seed = nextSeed();

  private home(k: number): number {
    // murmur3's finaliser over the seeded key, per block of 8 neighbouring keys: a block keeps its
    // keys side by side (one cache line of values), so a table announced in order (as BGP peers send
    // it) costs one cache miss per 8 prefixes instead of one per prefix, while blocks land apart.
    let h = ((k >>> 3) ^ this.seed) >>> 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (((h ^ (h >>> 16)) >>> (32 - this.bits)) & ~7) | (k & 7);
  }

  get(k: number): V | undefined {
    const mask = this.keys.length - 1;
    for (let i = this.home(k); ; i = (i + 1) & mask) {
      const v = this.vals[i];
      if (v === undefined) return undefined;
      if (this.keys[i] === k) return v;
    }
  }

  /** Sets `k` to `v` (`v` must not be undefined). */
  set(k: number, v: V): void {
    const mask = this.keys.length - 1;
    let i = this.home(k);
    for (; this.vals[i] !== undefined; i = (i + 1) & mask) {
      if (this.keys[i] === k) {
        this.vals[i] = v;
        return;
      }
    }
    this.keys[i] = k;
    this.vals[i] = v;
    if (++this.size * 4 > this.keys.length * 3) this.grow();
  }

  /**
   * Sets `k` to `v` when `k` is absent and returns undefined; otherwise returns the value it has and
   * changes nothing. One probe sequence for what would take a `get` and a `set`.
   */
  setIfAbsent(k: number, v: V): V | undefined {
    const mask = this.keys.length - 1;
    let i = this.home(k);
    for (; ; i = (i + 1) & mask) {
      const cur = this.vals[i];
      if (cur === undefined) break;
      if (this.keys[i] === k) return cur;
    }
    this.keys[i] = k;
    this.vals[i] = v;
    if (++this.size * 4 > this.keys.length * 3) this.grow();
    return undefined;
  }

  delete(k: number): boolean {
    const mask = this.keys.length - 1;
    let i = this.home(k);
    for (; ; i = (i + 1) & mask) {
      if (this.vals[i] === undefined) return false;
      if (this.keys[i] === k) break;
    }
    // Backward-shift: pull later entries of the probe run into the hole so lookups never stop early.
    for (let j = (i + 1) & mask; this.vals[j] !== undefined; j = (j + 1) & mask) {
      const h = this.home(this.keys[j]!);
      if (((j - h) & mask) >= ((j - i) & mask)) {
        this.keys[i] = this.keys[j]!;
        this.vals[i] = this.vals[j];
        i = j;
      }
    }
    this.vals[i] = undefined;
    this.size--;
    return true;
  }

  /** Calls `cb` for every entry. The map must not be modified during the walk. */
  forEach(cb: (v: V, k: number) => void): void {
    const vals = this.vals;
    for (let i = 0; i < vals.length; i++) {
      const v = vals[i];
      if (v !== undefined) cb(v, this.keys[i]!);
    }
  }

  clear(): void {
    this.bits = 4;
    this.keys = new Uint32Array(1 << 4);
    this.vals = new Array(1 << 4).fill(undefined);
    this.size = 0;
  }

  private grow(): void {
    const oldKeys = this.keys;
    const oldVals = this.vals;
    this.bits++;
    this.keys = new Uint32Array(1 << this.bits);
    this.vals = new Array(1 << this.bits).fill(undefined);
    const mask = this.keys.length - 1;
    for (let j = 0; j < oldVals.length; j++) {
      const v = oldVals[j];
      if (v === undefined) continue;
      const k = oldKeys[j]!;
      let i = this.home(k);
      while (this.vals[i] !== undefined) i = (i + 1) & mask;
      this.keys[i] = k;
      this.vals[i] = v;
    }
  }
}

/** A map from prefixes to `V`, per address family and prefix length. */
export class PrefixTable<V> {
  private readonly v4 = Array.from({ length: 33 }, () => new U32Map<V>());
  private readonly v6 = Array.from({ length: 129 }, () => new Map<string, V>());
  private count = 0;

  /** Number of prefixes. */
  get size(): number {
    return this.count;
  }

  getV4(addr: number, len: number): V | undefined {
    return this.v4[len]!.get(v4Key(addr, len));
  }

  setV4(addr: number, len: number, v: V): void {
    const m = this.v4[len]!;
    const k = v4Key(addr, len);
    const before = m.size;
    m.set(k, v);
    this.count += m.size - before;
  }

  /** Sets the prefix to `v` when absent (returns undefined), else returns its value unchanged. */
  setV4IfAbsent(addr: number, len: number, v: V): V | undefined {
    const prev = this.v4[len]!.setIfAbsent(v4Key(addr, len), v);
    if (prev === undefined) this.count++;
    return prev;
  }

  deleteV4(addr: number, len: number): boolean {
    const ok = this.v4[len]!.delete(v4Key(addr, len));
    if (ok) this.count--;
    return ok;
  }

  getV6(addr: Uint8Array, len: number): V | undefined {
    return this.v6[len]!.get(v6Key(addr, len));
  }

  setV6(addr: Uint8Array, len: number, v: V): void {
    const m = this.v6[len]!;
    const before = m.size;
    m.set(v6Key(addr, len), v);
    this.count += m.size - before;
  }

  deleteV6(addr: Uint8Array, len: number): boolean {
    const ok = this.v6[len]!.delete(v6Key(addr, len));
    if (ok) this.count--;
    return ok;
  }

  get(p: RibPrefix): V | undefined {
    return p.afi === Afi.IPv4 ? this.getV4(p.v4, p.len) : this.getV6(p.v6!, p.len);
  }

  set(p: RibPrefix, v: V): void {
    if (p.afi === Afi.IPv4) this.setV4(p.v4, p.len, v);
    else this.setV6(p.v6!, p.len, v);
  }

  delete(p: RibPrefix): boolean {
    return p.afi === Afi.IPv4 ? this.deleteV4(p.v4, p.len) : this.deleteV6(p.v6!, p.len);
  }

  /**
   * Calls `cb` for every entry. The callback gets the prefix parts, not an object, so a full walk
   * allocates nothing for IPv4. The table must not be modified during the walk.
   */
  forEach(cb: (afi: Afi, len: number, v4: number, v6: Uint8Array | null, value: V) => void): void {
    for (let len = 0; len <= 32; len++) {
      this.v4[len]!.forEach((v, k) => {
        cb(Afi.IPv4, len, v4FromKey(k, len), null, v);
      });
    }
    for (let len = 0; len <= 128; len++) {
      for (const [k, v] of this.v6[len]!) cb(Afi.IPv6, len, 0, v6FromKey(k), v);
    }
  }

  /** Longest-prefix match of an IPv4 address. */
  lookupV4(addr: number): { len: number; value: V } | undefined {
    for (let len = 32; len >= 0; len--) {
      const v = this.v4[len]!.get(v4Key(addr, len));
      if (v !== undefined) return { len, value: v };
    }
    return undefined;
  }

  clear(): void {
    for (const m of this.v4) m.clear();
    for (const m of this.v6) m.clear();
    this.count = 0;
  }
}
