import type { Selector } from "@margay/api";
import type { LabelIndex } from "../labels/label-index.js";

/**
 * Reference counts over the one {@link LabelIndex} the calculation graph shares between policy
 * selectors (active rules) and IP-set selectors (rule scanner): a selector is indexed while anyone
 * holds it, once however many hold it.
 */
export class SelectorRefs {
  readonly #index: LabelIndex;
  readonly #onDropped: (selectorId: string) => void;
  readonly #refs = new Map<string, number>();

  /**
   * @param index - the shared index.
   * @param onDropped - told when a selector leaves the index (the index itself reports no matches
   *   stopping then), so per-selector state kept elsewhere can go with it.
   */
  constructor(index: LabelIndex, onDropped: (selectorId: string) => void) {
    this.#index = index;
    this.#onDropped = onDropped;
  }

  /** Takes a reference; the first one adds the selector to the index (which reports its matches). */
  acquire(sel: Selector): void {
    const n = this.#refs.get(sel.id) ?? 0;
    this.#refs.set(sel.id, n + 1);
    if (n === 0) this.#index.addSelector(sel.id, sel);
  }

  /** Drops a reference; the last one removes the selector from the index. */
  release(sel: Selector): void {
    const n = this.#refs.get(sel.id) ?? 0;
    if (n <= 1) {
      this.#refs.delete(sel.id);
      this.#onDropped(sel.id);
      this.#index.removeSelector(sel.id);
    } else this.#refs.set(sel.id, n - 1);
  }
}
