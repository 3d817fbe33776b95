import type { Selector } from "@margay/api";

/** Called when a selector starts or stops matching an item. */
export type MatchListener = (selectorId: string, itemKey: string, matches: boolean) => void;

interface ItemState {
  own: Readonly<Record<string, string>>;
  parents: readonly string[];
  labels: Map<string, string>;
  matches: Set<string>;
}

type IndexKey =
  | { readonly kind: "values"; readonly label: string; readonly values: readonly string[] }
  /** Under `label`'s values within each allowed value of the scope label (see {@link LabelIndexOptions}). */
  | {
      readonly kind: "scoped";
      readonly scopes: readonly string[];
      readonly label: string;
      readonly values: readonly string[];
    }
  | { readonly kind: "present"; readonly label: string }
  | { readonly kind: "never" }
  | { readonly kind: "scan" };

interface SelectorState {
  readonly selector: Selector;
  readonly key: IndexKey;
  readonly matches: Set<string>;
}

/** Options of {@link LabelIndex}. */
export interface LabelIndexOptions {
  /**
   * A label (nearly) every item carries and most selectors pin to one value: Calico's
   * `projectcalico.org/namespace`. Items and selectors are also indexed by its value, so a selector like
   * `ns == X && app == Y` scans only the `app == Y` items of namespace X, not every namespace's (a
   * Kubernetes NetworkPolicy always pins its namespace, and app names repeat across namespaces: at 100k
   * endpoints the unscoped scan read 1.9M candidates for 10k such selectors). Default: none.
   */
  scopeLabel?: string | undefined;
}

/** scope value → label → value → members. */
type ScopedIndex = Map<string, Map<string, Map<string, Set<string>>>>;

function addScoped(m: ScopedIndex, scope: string, label: string, value: string, member: string): void {
  let byLabel = m.get(scope);
  if (byLabel === undefined) m.set(scope, (byLabel = new Map()));
  let byValue = byLabel.get(label);
  if (byValue === undefined) byLabel.set(label, (byValue = new Map()));
  addTo(byValue, value, member);
}

function removeScoped(m: ScopedIndex, scope: string, label: string, value: string, member: string): void {
  const byLabel = m.get(scope);
  const byValue = byLabel?.get(label);
  if (byValue === undefined) return;
  removeFrom(byValue, value, member);
  if (byValue.size === 0) {
    byLabel!.delete(label);
    if (byLabel!.size === 0) m.delete(scope);
  }
}

function addTo<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  let s = m.get(k);
  if (s === undefined) m.set(k, (s = new Set()));
  s.add(v);
}
function removeFrom<K, V>(m: Map<K, Set<V>>, k: K, v: V): void {
  const s = m.get(k);
  if (s === undefined) return;
  s.delete(v);
  if (s.size === 0) m.delete(k);
}

/**
 * Which selectors match which labelled items, kept up to date incrementally.
 *
 * Items have their own labels plus labels inherited from parents (profiles; the item's own label wins,
 * then earlier parents win). Each selector is filed under one label its {@link Selector.labelRestrictions}
 * require (the rarest at the time it is added): under each allowed value when the values are known, else
 * under the label's presence; selectors that require nothing are scanned for every item. So an item
 * change evaluates only the selectors filed under the item's labels, and a selector change only the
 * items that carry its label.
 */
export class LabelIndex {
  readonly #items = new Map<string, ItemState>();
  readonly #parents = new Map<string, Readonly<Record<string, string>>>();
  readonly #childrenOf = new Map<string, Set<string>>();
  /** label → value → items carrying it (effective labels). */
  readonly #itemsByLabel = new Map<string, Map<string, Set<string>>>();
  readonly #selectors = new Map<string, SelectorState>();
  readonly #selByValue = new Map<string, Map<string, Set<string>>>();
  readonly #selByPresence = new Map<string, Set<string>>();
  readonly #scanned = new Set<string>();
  readonly #listener: MatchListener;
  readonly #scopeLabel: string | undefined;
  /** Items by scope value, then label and value (their effective labels but the scope label). */
  readonly #itemsByScope: ScopedIndex = new Map();
  /** Selectors filed `scoped`, by scope value, then label and value. */
  readonly #selByScope: ScopedIndex = new Map();
  #candidatesScanned = 0;
  #selectorsEvaluated = 0;

  /**
   * @param listener - told of every match that starts or stops (not of removals of the selector).
   * @param options - see {@link LabelIndexOptions}.
   */
  constructor(listener: MatchListener, options: LabelIndexOptions = {}) {
    this.#listener = listener;
    this.#scopeLabel = options.scopeLabel;
  }

  /** Number of items. */
  get itemCount(): number {
    return this.#items.size;
  }

  /** Number of selectors. */
  get selectorCount(): number {
    return this.#selectors.size;
  }

  /**
   * Items looked at so far to compute new selectors' matches (candidates from the index, each checked):
   * what an added selector costs, as a count a test or benchmark can read.
   */
  get candidatesScanned(): number {
    return this.#candidatesScanned;
  }

  /**
   * Selector evaluations so far (each full match of a selector against an item's labels, for an item
   * change or a new selector): the index's matching work, as a count a benchmark can divide by changes.
   */
  get selectorsEvaluated(): number {
    return this.#selectorsEvaluated;
  }

  /** Effective labels of an item (own over inherited), or undefined if unknown. */
  labelsOf(itemKey: string): ReadonlyMap<string, string> | undefined {
    return this.#items.get(itemKey)?.labels;
  }

  /** Ids of the selectors matching an item. */
  selectorsMatching(itemKey: string): ReadonlySet<string> {
    return this.#items.get(itemKey)?.matches ?? new Set();
  }

  /** Keys of the items a selector matches. */
  itemsMatching(selectorId: string): ReadonlySet<string> {
    return this.#selectors.get(selectorId)?.matches ?? new Set();
  }

  /** True if the selector is indexed. */
  hasSelector(selectorId: string): boolean {
    return this.#selectors.has(selectorId);
  }

  /** Adds or replaces an item. */
  setItem(key: string, own: Readonly<Record<string, string>>, parents: readonly string[]): void {
    const old = this.#items.get(key);
    if (old === undefined) {
      for (const p of parents) addTo(this.#childrenOf, p, key);
      const state: ItemState = { own, parents, labels: new Map(), matches: new Set() };
      this.#items.set(key, state);
      this.#refresh(key, state);
      return;
    }
    // A known item keeps its state object; only parents it gains or loses touch the children sets (a
    // profile's children are a whole namespace's pods: a label change need not look it up).
    for (const p of old.parents) if (!parents.includes(p)) removeFrom(this.#childrenOf, p, key);
    for (const p of parents) if (!old.parents.includes(p)) addTo(this.#childrenOf, p, key);
    old.own = own;
    old.parents = parents;
    this.#refresh(key, old);
  }

  /** Removes an item (its matches stop, and listeners hear of it). */
  deleteItem(key: string): void {
    const state = this.#items.get(key);
    if (state === undefined) return;
    for (const p of state.parents) removeFrom(this.#childrenOf, p, key);
    this.#unpost(key, state.labels);
    this.#items.delete(key);
    const stopped = [...state.matches];
    for (const selId of stopped) this.#selectors.get(selId)?.matches.delete(key);
    state.matches.clear();
    // Listeners may add or remove selectors: only report selectors that still exist.
    for (const selId of stopped) if (this.#selectors.has(selId)) this.#listener(selId, key, false);
  }

  /** Adds or replaces a parent's labels; every child is re-evaluated. */
  setParent(id: string, labels: Readonly<Record<string, string>>): void {
    this.#parents.set(id, labels);
    this.#refreshChildren(id);
  }

  /** Removes a parent (children lose its labels). */
  deleteParent(id: string): void {
    if (!this.#parents.delete(id)) return;
    this.#refreshChildren(id);
  }

  /** Adds a selector under its id and computes its matches (listeners hear of each). No-op if present. */
  addSelector(id: string, selector: Selector): void {
    if (this.#selectors.has(id)) return;
    const key = this.#chooseKey(selector);
    const state: SelectorState = { selector, key, matches: new Set() };
    this.#selectors.set(id, state);
    // Candidates are iterated in place (no copies: at 100k items the copies were most of the garbage),
    // which is safe because nothing below changes the label index until the listeners run.
    let candidates: Iterable<Iterable<string>>;
    switch (key.kind) {
      case "never":
        return;
      case "scan":
        this.#scanned.add(id);
        candidates = [this.#items.keys()];
        break;
      case "present": {
        addTo(this.#selByPresence, key.label, id);
        candidates = this.#itemsByLabel.get(key.label)?.values() ?? [];
        break;
      }
      case "values": {
        let m = this.#selByValue.get(key.label);
        if (m === undefined) this.#selByValue.set(key.label, (m = new Map()));
        for (const v of key.values) addTo(m, v, id);
        const byValue = this.#itemsByLabel.get(key.label);
        candidates = byValue === undefined ? [] : key.values.map((v) => byValue.get(v) ?? []);
        break;
      }
      case "scoped": {
        const groups: Iterable<string>[] = [];
        for (const scope of key.scopes) {
          const byValue = this.#itemsByScope.get(scope)?.get(key.label);
          for (const v of key.values) {
            addScoped(this.#selByScope, scope, key.label, v, id);
            const items = byValue?.get(v);
            if (items !== undefined) groups.push(items);
          }
        }
        candidates = groups;
        break;
      }
    }
    // The selector's other required values, checked with one map lookup each before the full evaluation:
    // a namespaced policy's `ns == X && app == Y` filed under `app == Y` skips the other namespaces' pods.
    const filters: { label: string; values: ReadonlySet<string> }[] = [];
    for (const [label, r] of selector.labelRestrictions()) {
      const values = r.mustHaveOneOfValues;
      if (values === undefined) continue;
      if ((key.kind === "values" || key.kind === "scoped") && key.label === label) continue;
      // A scoped key's candidates are all in an allowed scope already.
      if (key.kind === "scoped" && label === this.#scopeLabel) continue;
      filters.push({ label, values: new Set(values) });
    }
    const started: string[] = [];
    for (const group of candidates) {
      next: for (const itemKey of group) {
        this.#candidatesScanned++;
        const item = this.#items.get(itemKey)!;
        for (const f of filters) {
          const v = item.labels.get(f.label);
          if (v === undefined || !f.values.has(v)) continue next;
        }
        this.#selectorsEvaluated++;
        if (selector.matches(item.labels)) {
          item.matches.add(id);
          state.matches.add(itemKey);
          started.push(itemKey);
        }
      }
    }
    for (const itemKey of started) {
      if (this.#selectors.get(id) === state && state.matches.has(itemKey)) this.#listener(id, itemKey, true);
    }
  }

  /** Removes a selector. Listeners are not told: the caller is dropping everything it derived from it. */
  removeSelector(id: string): void {
    const state = this.#selectors.get(id);
    if (state === undefined) return;
    this.#selectors.delete(id);
    const key = state.key;
    if (key.kind === "scan") this.#scanned.delete(id);
    else if (key.kind === "present") removeFrom(this.#selByPresence, key.label, id);
    else if (key.kind === "values") {
      const m = this.#selByValue.get(key.label);
      if (m !== undefined) {
        for (const v of key.values) removeFrom(m, v, id);
        if (m.size === 0) this.#selByValue.delete(key.label);
      }
    } else if (key.kind === "scoped") {
      for (const scope of key.scopes)
        for (const v of key.values) removeScoped(this.#selByScope, scope, key.label, v, id);
    }
    for (const itemKey of state.matches) this.#items.get(itemKey)?.matches.delete(id);
  }

  #chooseKey(selector: Selector): IndexKey {
    let best: IndexKey = { kind: "scan" };
    let bestCost = Number.POSITIVE_INFINITY;
    for (const [label, r] of selector.labelRestrictions()) {
      if (r.mustBePresent && r.mustBeAbsent) return { kind: "never" };
      const values = r.mustHaveOneOfValues;
      if (values !== undefined) {
        if (values.length === 0) return { kind: "never" };
        const byValue = this.#itemsByLabel.get(label);
        // +1 per value so that, with an empty index, fewer values still win.
        let cost = values.length;
        for (const v of values) cost += byValue?.get(v)?.size ?? 0;
        if (best.kind !== "values" || cost < bestCost) {
          best = { kind: "values", label, values };
          bestCost = cost;
        }
      } else if (r.mustBePresent && best.kind !== "values") {
        let cost = 1;
        for (const s of this.#itemsByLabel.get(label)?.values() ?? []) cost += s.size;
        if (best.kind === "scan" || cost < bestCost) {
          best = { kind: "present", label };
          bestCost = cost;
        }
      }
    }
    // Within the scope: the items of the allowed scopes that carry one of another label's values.
    const scopes =
      this.#scopeLabel === undefined
        ? undefined
        : selector.labelRestrictions().get(this.#scopeLabel)?.mustHaveOneOfValues;
    if (scopes !== undefined) {
      for (const [label, r] of selector.labelRestrictions()) {
        const values = r.mustHaveOneOfValues;
        if (label === this.#scopeLabel || values === undefined) continue;
        let cost = scopes.length * values.length;
        for (const scope of scopes) {
          const byValue = this.#itemsByScope.get(scope)?.get(label);
          if (byValue !== undefined) for (const v of values) cost += byValue.get(v)?.size ?? 0;
        }
        if ((best.kind !== "values" && best.kind !== "scoped") || cost < bestCost) {
          best = { kind: "scoped", scopes, label, values };
          bestCost = cost;
        }
      }
    }
    return best;
  }

  #refreshChildren(parentId: string): void {
    const children = this.#childrenOf.get(parentId);
    if (children === undefined) return;
    for (const key of [...children]) this.#refresh(key, this.#items.get(key)!);
  }

  #effective(state: ItemState): Map<string, string> {
    const labels = new Map<string, string>();
    for (const p of state.parents) {
      const pl = this.#parents.get(p);
      if (pl === undefined) continue;
      for (const k in pl) if (!labels.has(k)) labels.set(k, pl[k]!);
    }
    for (const k in state.own) labels.set(k, state.own[k]!);
    return labels;
  }

  #unpost(key: string, labels: ReadonlyMap<string, string>): void {
    for (const [k, v] of labels) {
      const m = this.#itemsByLabel.get(k);
      if (m === undefined) continue;
      removeFrom(m, v, key);
      if (m.size === 0) this.#itemsByLabel.delete(k);
    }
    this.#postScoped(key, labels, undefined);
  }

  /**
   * Moves an item's scoped postings from its labels `before` to `after` (undefined: none), touching
   * only what changed when its scope did not.
   */
  #postScoped(
    key: string,
    before: ReadonlyMap<string, string>,
    after: ReadonlyMap<string, string> | undefined,
  ): void {
    const label = this.#scopeLabel;
    if (label === undefined) return;
    const was = before.get(label);
    const is = after?.get(label);
    const moved = was !== is;
    if (was !== undefined)
      for (const [k, v] of before)
        if (k !== label && (moved || after!.get(k) !== v)) removeScoped(this.#itemsByScope, was, k, v, key);
    if (is !== undefined)
      for (const [k, v] of after!)
        if (k !== label && (moved || before.get(k) !== v)) addScoped(this.#itemsByScope, is, k, v, key);
  }

  #refresh(key: string, state: ItemState): void {
    const before = state.labels;
    const after = this.#effective(state);
    let same = before.size === after.size;
    if (same) for (const [k, v] of after) if (before.get(k) !== v) same = false;
    if (same && before.size > 0) return;
    // Re-post only the labels that changed.
    for (const [k, v] of before) {
      if (after.get(k) !== v) {
        const m = this.#itemsByLabel.get(k);
        if (m !== undefined) {
          removeFrom(m, v, key);
          if (m.size === 0) this.#itemsByLabel.delete(k);
        }
      }
    }
    for (const [k, v] of after) {
      if (before.get(k) !== v) {
        let m = this.#itemsByLabel.get(k);
        if (m === undefined) this.#itemsByLabel.set(k, (m = new Map()));
        addTo(m, v, key);
      }
    }
    this.#postScoped(key, before, after);
    state.labels = after;
    // Each selector is filed under exactly one key, and an item has one value per label (and one
    // scope), so these candidate lists never overlap: no de-duplication needed.
    const old = state.matches;
    const next = new Set<string>();
    const consider = (ids: Iterable<string>) => {
      for (const selId of ids) {
        this.#selectorsEvaluated++;
        if (this.#selectors.get(selId)!.selector.matches(after)) next.add(selId);
      }
    };
    consider(this.#scanned);
    for (const [k, v] of after) {
      const byValue = this.#selByValue.get(k)?.get(v);
      if (byValue !== undefined) consider(byValue);
      const byPresence = this.#selByPresence.get(k);
      if (byPresence !== undefined) consider(byPresence);
    }
    const scope = this.#scopeLabel === undefined ? undefined : after.get(this.#scopeLabel);
    const scoped = scope === undefined ? undefined : this.#selByScope.get(scope);
    if (scoped !== undefined)
      for (const [k, v] of after) {
        const ids = scoped.get(k)?.get(v);
        if (ids !== undefined) consider(ids);
      }
    state.matches = next;
    const stopped: string[] = [];
    const started: string[] = [];
    for (const selId of old) {
      if (!next.has(selId)) {
        this.#selectors.get(selId)?.matches.delete(key);
        stopped.push(selId);
      }
    }
    for (const selId of next) {
      if (!old.has(selId)) {
        this.#selectors.get(selId)!.matches.add(key);
        started.push(selId);
      }
    }
    // State is consistent before anyone hears of it; listeners may add or remove selectors re-entrantly,
    // so each event is re-checked against the current state when delivered.
    for (const selId of stopped) {
      if (this.#selectors.has(selId) && !state.matches.has(selId)) this.#listener(selId, key, false);
    }
    for (const selId of started) {
      if (this.#selectors.has(selId) && state.matches.has(selId)) this.#listener(selId, key, true);
    }
  }
}
