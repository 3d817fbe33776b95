/**
 * The rule scanner (Felix's RuleScanner plus its IP-set member calculation): active rules name IP sets
 * (a selector's addresses, or one named port of them); each set is reference-counted by the active
 * rules that use it, and its members are kept up to date from the shared label index.
 */
import type { LabelIndex } from "../labels/label-index.js";
import type { NormalizedItem, NormalizedRule } from "../model/normalize.js";
import { protocolName } from "../model/protocol.js";
import { type IpSetSpec, ruleIpSets } from "./render.js";
import type { SelectorRefs } from "./selector-refs.js";
import type { PolicyUpdate } from "@margay/dataplane-contract";

/** What the scanner reads from the graph it belongs to. */
export interface RuleScannerContext {
  /** The shared label index (every item, every selector in use). */
  readonly index: LabelIndex;
  /** Reference counts over the index's selectors. */
  readonly selectors: SelectorRefs;
  /** Every labelled item by key (endpoints of every node, network sets). */
  readonly items: ReadonlyMap<string, NormalizedItem>;
}

interface IpSetState {
  readonly spec: IpSetSpec;
  refs: number;
  readonly members: Map<string, number>;
  readonly contribs: Map<string, readonly string[]>;
  /** Send the whole membership at the next flush (new, or re-created within one batch). */
  full: boolean;
  /** Members changed since the last flush → were they present at the last flush? */
  readonly dirty: Map<string, boolean>;
}

/** Address part of a CIDR text (`10.0.0.1/32` → `10.0.0.1`). */
export function addressOf(cidrText: string): string {
  return cidrText.slice(0, cidrText.indexOf("/"));
}

/** Members a labelled item contributes to a set. */
export function memberContribution(spec: IpSetSpec, item: NormalizedItem): string[] {
  const np = spec.namedPort;
  if (np === undefined) return item.nets.map((c) => c.text);
  const out: string[] = [];
  for (const p of item.ports) {
    if (p.name !== np.name || p.protocol !== np.protocol) continue;
    for (const c of item.nets) out.push(`${addressOf(c.text)},${protocolName(p.protocol)}:${p.port}`);
  }
  return out;
}

/** IP-set updates of one flush: updates go first in the stream, removes last. */
export interface IpSetFlush {
  readonly updates: PolicyUpdate[];
  readonly removes: PolicyUpdate[];
}

/**
 * Reference-counted IP sets of the active rules, with their members and what changed since the last
 * {@link RuleScanner.flush}.
 */
export class RuleScanner {
  readonly #ctx: RuleScannerContext;
  readonly #ipSets = new Map<string, IpSetState>();
  readonly #ipSetsBySelector = new Map<string, Set<string>>();
  readonly #sent = new Set<string>();
  readonly #dirty = new Set<string>();

  /** @param ctx - the graph's shared index, selector refs and items. */
  constructor(ctx: RuleScannerContext) {
    this.#ctx = ctx;
  }

  /** Number of IP sets in use. */
  get size(): number {
    return this.#ipSets.size;
  }

  /** Rules became active: take a reference on each IP set they use. */
  acquireRules(rules: readonly NormalizedRule[]): void {
    for (const r of rules) for (const s of ruleIpSets(r)) this.#acquire(s);
  }

  /** Rules stopped being active: drop their references (a set nobody uses is removed). */
  releaseRules(rules: readonly NormalizedRule[]): void {
    for (const r of rules) for (const s of ruleIpSets(r)) this.#release(s.id);
  }

  /** The label index's report for a selector: the item joins or leaves the sets over it. */
  onMatch(selId: string, itemKey: string, matches: boolean): void {
    const sets = this.#ipSetsBySelector.get(selId);
    if (sets === undefined) return;
    for (const setId of [...sets]) {
      const set = this.#ipSets.get(setId);
      if (set === undefined) continue;
      if (matches)
        this.#addContrib(set, itemKey, memberContribution(set.spec, this.#ctx.items.get(itemKey)!));
      else this.#removeContrib(set, itemKey);
    }
  }

  /**
   * An item's addresses or ports may have changed (its labels aside): recompute what it contributes to
   * the sets it is in. Call with the item's new state stored and before its labels are re-indexed.
   */
  itemChanged(old: NormalizedItem, item: NormalizedItem): void {
    if (sameNets(old, item) && samePorts(old, item)) return;
    for (const selId of this.#ctx.index.selectorsMatching(item.key)) {
      for (const setId of this.#ipSetsBySelector.get(selId) ?? []) {
        const set = this.#ipSets.get(setId)!;
        this.#removeContrib(set, item.key);
        this.#addContrib(set, item.key, memberContribution(set.spec, item));
      }
    }
  }

  /** IP-set updates since the last flush: full contents for new sets, deltas otherwise; removes. */
  flush(): IpSetFlush {
    const updates: PolicyUpdate[] = [];
    const removes: PolicyUpdate[] = [];
    for (const id of [...this.#dirty].sort()) {
      const set = this.#ipSets.get(id);
      if (set === undefined) {
        if (this.#sent.delete(id)) removes.push({ kind: "ip-set-remove", id });
        continue;
      }
      if (set.full) {
        updates.push({
          kind: "ip-set-update",
          id,
          type: set.spec.namedPort === undefined ? "net" : "ip-and-port",
          members: [...set.members.keys()].sort(),
        });
        set.full = false;
        this.#sent.add(id);
      } else {
        const added: string[] = [];
        const removed: string[] = [];
        for (const [m, was] of set.dirty) {
          const now = set.members.has(m);
          if (now && !was) added.push(m);
          else if (!now && was) removed.push(m);
        }
        if (added.length + removed.length > 0) {
          updates.push({
            kind: "ip-set-delta-update",
            id,
            added: added.sort(),
            removed: removed.sort(),
          });
        }
      }
      set.dirty.clear();
    }
    this.#dirty.clear();
    return { updates, removes };
  }

  #memberChanged(set: IpSetState, member: string, wasPresent: boolean): void {
    if (set.full) return;
    if (!set.dirty.has(member)) set.dirty.set(member, wasPresent);
    this.#dirty.add(set.spec.id);
  }

  #addContrib(set: IpSetState, itemKey: string, members: readonly string[]): void {
    // Idempotent: a set created while its selector's matches are being reported may see an item twice.
    if (set.contribs.has(itemKey)) this.#removeContrib(set, itemKey);
    if (members.length === 0) return;
    set.contribs.set(itemKey, members);
    for (const m of members) {
      const n = set.members.get(m) ?? 0;
      set.members.set(m, n + 1);
      if (n === 0) this.#memberChanged(set, m, false);
    }
  }

  #removeContrib(set: IpSetState, itemKey: string): void {
    const members = set.contribs.get(itemKey);
    if (members === undefined) return;
    set.contribs.delete(itemKey);
    for (const m of members) {
      const n = set.members.get(m)!;
      if (n <= 1) {
        set.members.delete(m);
        this.#memberChanged(set, m, true);
      } else set.members.set(m, n - 1);
    }
  }

  #acquire(spec: IpSetSpec): void {
    const existing = this.#ipSets.get(spec.id);
    if (existing !== undefined) {
      existing.refs++;
      return;
    }
    const set: IpSetState = {
      spec,
      refs: 1,
      members: new Map(),
      contribs: new Map(),
      full: true,
      dirty: new Map(),
    };
    this.#ipSets.set(spec.id, set);
    this.#dirty.add(spec.id);
    let users = this.#ipSetsBySelector.get(spec.selector.id);
    if (users === undefined) this.#ipSetsBySelector.set(spec.selector.id, (users = new Set()));
    users.add(spec.id);
    // Acquire after registering as a user: if the selector is new, its initial matches fill the set.
    const { index, items } = this.#ctx;
    const known = index.hasSelector(spec.selector.id);
    this.#ctx.selectors.acquire(spec.selector);
    if (known) {
      for (const itemKey of index.itemsMatching(spec.selector.id)) {
        this.#addContrib(set, itemKey, memberContribution(spec, items.get(itemKey)!));
      }
    }
  }

  #release(id: string): void {
    const set = this.#ipSets.get(id)!;
    if (--set.refs > 0) return;
    this.#ipSets.delete(id);
    this.#dirty.add(id);
    const users = this.#ipSetsBySelector.get(set.spec.selector.id)!;
    users.delete(id);
    if (users.size === 0) this.#ipSetsBySelector.delete(set.spec.selector.id);
    this.#ctx.selectors.release(set.spec.selector);
  }
}

function sameNets(a: NormalizedItem, b: NormalizedItem): boolean {
  return a.nets.length === b.nets.length && a.nets.every((c, i) => c.text === b.nets[i]!.text);
}

function samePorts(a: NormalizedItem, b: NormalizedItem): boolean {
  return (
    a.ports.length === b.ports.length &&
    a.ports.every(
      (p, i) =>
        p.name === b.ports[i]!.name && p.protocol === b.ports[i]!.protocol && p.port === b.ports[i]!.port,
    )
  );
}
