/**
 * The typed store of an informer: objects by key plus secondary indexes (namespace always; others such
 * as a pod's node by configuration), kept consistent on every change.
 *
 * @packageDocumentation
 */

import { type KubeObject, objectKey } from "../kube-types.js";

/** Computes the index values of an object (an object may sit under several values, or none). */
export type IndexFunc<T> = (obj: T) => readonly string[];

/** Name of the built-in namespace index. */
export const NAMESPACE_INDEX = "namespace";

/** A read-only view of an informer's cache. */
export interface ObjectCacheReader<T extends KubeObject> {
  /** The object with key `namespace/name` (or `name`). */
  get(key: string): T | undefined;
  /** Whether the key is present. */
  has(key: string): boolean;
  /** All objects, in insertion order. */
  values(): IterableIterator<T>;
  /** All keys. */
  keys(): IterableIterator<string>;
  /** Number of objects. */
  readonly size: number;
  /** Objects whose index `index` contains `value` (e.g. `byIndex("namespace", "default")`). */
  byIndex(index: string, value: string): T[];
  /** The values under which `index` currently holds objects. */
  indexValues(index: string): string[];
}

/** A key-addressed object store with maintained indexes. */
export class ObjectCache<T extends KubeObject> implements ObjectCacheReader<T> {
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  private readonly indices = new Map<string, Map<string, Set<string>>>();

  /** @param indexers - extra indexes by name; `namespace` is always present. */
  constructor(indexers: Readonly<Record<string, IndexFunc<T>>> = {}) {
    this.indexers.set(NAMESPACE_INDEX, (o) =>
      o.metadata.namespace === undefined || o.metadata.namespace === "" ? [] : [o.metadata.namespace],
    );
    for (const [name, fn] of Object.entries(indexers)) this.indexers.set(name, fn);
    for (const name of this.indexers.keys()) this.indices.set(name, new Map());
  }

  get size(): number {
    return this.items.size;
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  values(): IterableIterator<T> {
    return this.items.values();
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  /** Inserts or replaces an object; returns the previous one. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.items.get(key);
    this.items.set(key, obj);
    for (const [name, fn] of this.indexers) {
      const idx = this.indices.get(name)!;
      const values = fn(obj);
      if (old !== undefined) {
        const before = fn(old);
        // Most updates leave index values alone (a pod keeps its namespace and node): skip the churn.
        if (before.length === values.length && before.every((v, i) => v === values[i])) continue;
        for (const v of before) this.drop(idx, v, key);
      }
      for (const v of values) {
        let set = idx.get(v);
        if (set === undefined) idx.set(v, (set = new Set()));
        set.add(key);
      }
    }
    return old;
  }

  /** Removes an object by key; returns it. */
  remove(key: string): T | undefined {
    const old = this.items.get(key);
    if (old === undefined) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  byIndex(index: string, value: string): T[] {
    const idx = this.indices.get(index);
    if (idx === undefined) throw new RangeError(`no index named ${index}`);
    const keys = idx.get(value);
    if (keys === undefined) return [];
    return [...keys].map((k) => this.items.get(k)!);
  }

  indexValues(index: string): string[] {
    const idx = this.indices.get(index);
    if (idx === undefined) throw new RangeError(`no index named ${index}`);
    return [...idx.keys()];
  }

  private drop(idx: Map<string, Set<string>>, value: string, key: string): void {
    const set = idx.get(value);
    if (set === undefined) return;
    set.delete(key);
    if (set.size === 0) idx.delete(value);
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const idx = this.indices.get(name)!;
      for (const v of fn(obj)) this.drop(idx, v, key);
    }
  }
}
