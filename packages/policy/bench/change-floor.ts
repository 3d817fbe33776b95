/**
 * The floor of the policy scale benchmark's `change-vs-endpoints` curve: what an endpoint label change
 * costs on the least any incremental label index keeps — each endpoint's labels by key, and the endpoints
 * under each label value — holding the same endpoints in the same process (so the same heap, the same
 * cache and TLB pressure). A change looks the endpoint up by its key and moves it from its old value's
 * posting set to the new one's: the hash-table traffic no implementation of the path avoids, which grows
 * with the cluster only through the memory hierarchy (the tables hold every endpoint).
 */
import type { WorkloadEndpoint } from "@margay/api";

/** One endpoint's input to {@link PostingsFloor.apply}: its key and its labels. */
export interface FloorChange {
  readonly key: string;
  readonly labels: ReadonlyMap<string, string>;
}

export class PostingsFloor {
  readonly #labels = new Map<string, ReadonlyMap<string, string>>();
  /** label → value → keys of the endpoints carrying it. */
  readonly #postings = new Map<string, Map<string, Set<string>>>();

  /** Number of endpoints held. */
  get size(): number {
    return this.#labels.size;
  }

  /** Adds an endpoint or re-files it under the labels that changed. */
  set(ep: WorkloadEndpoint): void {
    this.apply(PostingsFloor.prepare(ep));
  }

  /**
   * The endpoint's key and labels in the form the index keeps them: what a change's input is before the
   * index does anything with it, so a timed loop can build its inputs outside the timing (as the graph's
   * loop gets its resources pre-built).
   */
  static prepare(ep: WorkloadEndpoint): FloorChange {
    return {
      key: `${ep.metadata.namespace ?? ""}/${ep.metadata.name}`,
      labels: new Map(Object.entries(ep.metadata.labels ?? {})),
    };
  }

  /** {@link set} with a prepared input (kept by the index: do not apply the same one twice). */
  apply(change: FloorChange): void {
    const { key, labels } = change;
    const old = this.#labels.get(key);
    if (old !== undefined) {
      for (const [k, v] of old) {
        if (labels.get(k) === v) continue;
        const byValue = this.#postings.get(k)!;
        const set = byValue.get(v)!;
        set.delete(key);
        if (set.size === 0) byValue.delete(v);
      }
    }
    for (const [k, v] of labels) {
      if (old?.get(k) === v) continue;
      let byValue = this.#postings.get(k);
      if (byValue === undefined) this.#postings.set(k, (byValue = new Map()));
      let set = byValue.get(v);
      if (set === undefined) byValue.set(v, (set = new Set()));
      set.add(key);
    }
    this.#labels.set(key, labels);
  }
}
