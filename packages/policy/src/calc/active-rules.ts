/**
 * The active-rules calculator (Felix's ActiveRulesCalculator): which policies and profiles are active,
 * i.e. select or are used by at least one local endpoint. It keeps every policy and profile, learns from
 * the shared label index which policy selectors match local endpoints, hands the rules of whatever
 * becomes active (or stops being so) to the rule scanner, and emits the active policies and profiles.
 */
import type { LabelIndex } from "../labels/label-index.js";
import type { NormalizedPolicy, NormalizedProfile, NormalizedRule } from "../model/normalize.js";
import { renderRule } from "./render.js";
import type { RuleScanner } from "./rule-scanner.js";
import type { SelectorRefs } from "./selector-refs.js";
import type { PolicyUpdate, RenderedRule } from "@margay/dataplane-contract";

/** Where the calculator reports endpoints whose policy list may have changed. */
export interface EndpointDirtier {
  /** A local endpoint's policies may have changed. */
  markDirty(itemKey: string): void;
  /** Every local endpoint a selector matches may have had its policies change. */
  markSelected(selectorId: string): void;
}

/** What the calculator uses of the graph it belongs to. */
export interface ActiveRulesContext {
  /** The shared label index (profiles are its parents). */
  readonly index: LabelIndex;
  /** Reference counts over the index's selectors. */
  readonly selectors: SelectorRefs;
  /** Takes and drops the IP sets of rules as they become active and inactive. */
  readonly ruleScanner: RuleScanner;
  /** Told of local endpoints whose policy list may have changed. */
  readonly endpoints: EndpointDirtier;
}

/** Updates of one flush: updates go before endpoint updates in the stream, removes after. */
export interface ActiveRulesFlush {
  readonly updates: PolicyUpdate[];
  readonly removes: PolicyUpdate[];
}

function renderRules(rules: readonly NormalizedRule[], owner: string, dir: "in" | "out"): RenderedRule[] {
  return rules.map((r) => renderRule(r, `${owner}/${dir}/${r.index}`));
}

function emptyProfile(id: string): NormalizedProfile {
  return { id, inbound: [], outbound: [], labels: {} };
}

/** Tracks every policy and profile and which of them are active for the local endpoints. */
export class ActiveRulesCalculator {
  readonly #ctx: ActiveRulesContext;
  readonly #policies = new Map<string, NormalizedPolicy>();
  readonly #policyKeyById = new Map<string, string>();
  readonly #policiesBySelector = new Map<string, Set<string>>();
  readonly #activePolicies = new Set<string>();
  readonly #profiles = new Map<string, NormalizedProfile>();
  readonly #profileRefs = new Map<string, number>();
  /** Selector id → how many local endpoints it matches. */
  readonly #selLocalCount = new Map<string, number>();
  readonly #sentPolicies = new Map<string, string>();
  readonly #sentProfiles = new Map<string, string>();
  readonly #dirtyPolicies = new Set<string>();
  readonly #dirtyProfiles = new Set<string>();

  /** @param ctx - the graph's shared index, selector refs, rule scanner and endpoint tracker. */
  constructor(ctx: ActiveRulesContext) {
    this.#ctx = ctx;
  }

  /** Number of active policies. */
  get activePolicyCount(): number {
    return this.#activePolicies.size;
  }

  /** Number of profiles some local endpoint uses. */
  get activeProfileCount(): number {
    return [...this.#profileRefs.values()].filter((n) => n > 0).length;
  }

  /** Every policy whose selector is one of these (for an endpoint: the policies that select it). */
  policiesMatching(selectorIds: Iterable<string>): NormalizedPolicy[] {
    const out: NormalizedPolicy[] = [];
    for (const selId of selectorIds) {
      for (const pk of this.#policiesBySelector.get(selId) ?? []) out.push(this.#policies.get(pk)!);
    }
    return out;
  }

  /** The label index's report for a selector and a local endpoint. */
  onLocalMatch(selId: string, itemKey: string, matches: boolean): void {
    const n = (this.#selLocalCount.get(selId) ?? 0) + (matches ? 1 : -1);
    this.#selLocalCount.set(selId, n);
    const pols = this.#policiesBySelector.get(selId);
    if (pols !== undefined) {
      this.#ctx.endpoints.markDirty(itemKey);
      if ((matches && n === 1) || (!matches && n === 0)) for (const pk of pols) this.#updateActivity(pk);
    }
  }

  /** A selector left the shared index: forget its local match count. */
  selectorDropped(selId: string): void {
    this.#selLocalCount.delete(selId);
  }

  /** Adds, replaces (`next` given) or removes (`next` undefined) the policy stored under a key. */
  setPolicy(key: string, next: NormalizedPolicy | undefined): void {
    const old = this.#policies.get(key);
    if (old === undefined && next === undefined) return;
    const wasActive = this.#activePolicies.has(key);
    const { selectors, ruleScanner, endpoints } = this.#ctx;
    if (next !== undefined) {
      selectors.acquire(next.selector);
      let users = this.#policiesBySelector.get(next.selector.id);
      if (users === undefined) this.#policiesBySelector.set(next.selector.id, (users = new Set()));
      users.add(key);
      this.#policies.set(key, next);
      this.#policyKeyById.set(next.id, key);
      this.#dirtyPolicies.add(next.id);
    } else this.#policies.delete(key);
    if (old !== undefined) {
      if (next === undefined || old.selector.id !== next.selector.id) {
        const users = this.#policiesBySelector.get(old.selector.id)!;
        users.delete(key);
        if (users.size === 0) this.#policiesBySelector.delete(old.selector.id);
      }
      if (next === undefined || old.id !== next.id) {
        if (this.#policyKeyById.get(old.id) === key) this.#policyKeyById.delete(old.id);
        this.#dirtyPolicies.add(old.id);
      }
    }
    if (placementChanged(old, next)) {
      if (old !== undefined) endpoints.markSelected(old.selector.id);
      // An order or flag change keeps the selector: its endpoints are marked once.
      if (next !== undefined && next.selector.id !== old?.selector.id)
        endpoints.markSelected(next.selector.id);
    }
    const active = next !== undefined && (this.#selLocalCount.get(next.selector.id) ?? 0) > 0;
    // Take the new version's IP sets before dropping the old one's, so shared sets never churn.
    if (active) {
      this.#activePolicies.add(key);
      ruleScanner.acquireRules(next.inbound);
      ruleScanner.acquireRules(next.outbound);
    } else this.#activePolicies.delete(key);
    if (wasActive && old !== undefined) {
      ruleScanner.releaseRules(old.inbound);
      ruleScanner.releaseRules(old.outbound);
    }
    if (old !== undefined) selectors.release(old.selector);
  }

  /** Adds or replaces a profile (its labels are inherited by the endpoints that list it). */
  setProfile(p: NormalizedProfile): void {
    const old = this.#profiles.get(p.id);
    this.#profiles.set(p.id, p);
    this.#ctx.index.setParent(p.id, p.labels);
    if ((this.#profileRefs.get(p.id) ?? 0) > 0) {
      const { ruleScanner } = this.#ctx;
      ruleScanner.acquireRules(p.inbound);
      ruleScanner.acquireRules(p.outbound);
      if (old !== undefined) {
        ruleScanner.releaseRules(old.inbound);
        ruleScanner.releaseRules(old.outbound);
      }
      this.#dirtyProfiles.add(p.id);
    }
  }

  /** Removes a profile (no-op if unknown); endpoints still using it get an empty one. */
  deleteProfile(id: string): void {
    const old = this.#profiles.get(id);
    if (old === undefined) return;
    this.#profiles.delete(id);
    this.#ctx.index.deleteParent(id);
    if ((this.#profileRefs.get(id) ?? 0) > 0) {
      this.#ctx.ruleScanner.releaseRules(old.inbound);
      this.#ctx.ruleScanner.releaseRules(old.outbound);
      this.#dirtyProfiles.add(id);
    }
  }

  /** A local endpoint starts (`1`) or stops (`-1`) using a profile; once per distinct profile. */
  refProfile(id: string, delta: 1 | -1): void {
    const n = (this.#profileRefs.get(id) ?? 0) + delta;
    if (n === 0) this.#profileRefs.delete(id);
    else this.#profileRefs.set(id, n);
    if ((delta === 1 && n === 1) || (delta === -1 && n === 0)) {
      const p = this.#profiles.get(id);
      if (p !== undefined) {
        if (delta === 1) {
          this.#ctx.ruleScanner.acquireRules(p.inbound);
          this.#ctx.ruleScanner.acquireRules(p.outbound);
        } else {
          this.#ctx.ruleScanner.releaseRules(p.inbound);
          this.#ctx.ruleScanner.releaseRules(p.outbound);
        }
      }
      this.#dirtyProfiles.add(id);
    }
  }

  /** Active-policy updates and removes since the last flush (unchanged content is not resent). */
  flushPolicies(): ActiveRulesFlush {
    const updates: PolicyUpdate[] = [];
    const removes: PolicyUpdate[] = [];
    for (const id of [...this.#dirtyPolicies].sort()) {
      const key = this.#policyKeyById.get(id);
      const p = key === undefined ? undefined : this.#policies.get(key);
      if (p !== undefined && key !== undefined && this.#activePolicies.has(key)) {
        const update: PolicyUpdate = {
          kind: "active-policy-update",
          id,
          tier: p.tier,
          name: p.name,
          namespace: p.namespace,
          inbound: renderRules(p.inbound, id, "in"),
          outbound: renderRules(p.outbound, id, "out"),
          flags: p.flags,
        };
        const json = JSON.stringify(update);
        if (this.#sentPolicies.get(id) !== json) {
          this.#sentPolicies.set(id, json);
          updates.push(update);
        }
      } else if (this.#sentPolicies.delete(id)) removes.push({ kind: "active-policy-remove", id });
    }
    this.#dirtyPolicies.clear();
    return { updates, removes };
  }

  /** Active-profile updates and removes since the last flush (unchanged content is not resent). */
  flushProfiles(): ActiveRulesFlush {
    const updates: PolicyUpdate[] = [];
    const removes: PolicyUpdate[] = [];
    for (const id of [...this.#dirtyProfiles].sort()) {
      if ((this.#profileRefs.get(id) ?? 0) > 0) {
        // A referenced but missing profile is sent empty: it allows nothing (fail closed).
        const p = this.#profiles.get(id) ?? emptyProfile(id);
        const owner = `profile/${id}`;
        const update: PolicyUpdate = {
          kind: "active-profile-update",
          id,
          inbound: renderRules(p.inbound, owner, "in"),
          outbound: renderRules(p.outbound, owner, "out"),
        };
        const json = JSON.stringify(update);
        if (this.#sentProfiles.get(id) !== json) {
          this.#sentProfiles.set(id, json);
          updates.push(update);
        }
      } else if (this.#sentProfiles.delete(id)) removes.push({ kind: "active-profile-remove", id });
    }
    this.#dirtyProfiles.clear();
    return { updates, removes };
  }

  #updateActivity(key: string): void {
    const p = this.#policies.get(key);
    const active = p !== undefined && (this.#selLocalCount.get(p.selector.id) ?? 0) > 0;
    const was = this.#activePolicies.has(key);
    if (active === was || p === undefined) return;
    if (active) {
      this.#activePolicies.add(key);
      this.#ctx.ruleScanner.acquireRules(p.inbound);
      this.#ctx.ruleScanner.acquireRules(p.outbound);
    } else {
      this.#activePolicies.delete(key);
      this.#ctx.ruleScanner.releaseRules(p.inbound);
      this.#ctx.ruleScanner.releaseRules(p.outbound);
    }
    this.#dirtyPolicies.add(p.id);
  }
}

/** True if a policy change can move it within an endpoint's tiers (not just change its rules). */
function placementChanged(old: NormalizedPolicy | undefined, next: NormalizedPolicy | undefined): boolean {
  return (
    old === undefined ||
    next === undefined ||
    old.selector.id !== next.selector.id ||
    old.id !== next.id ||
    old.order !== next.order ||
    old.ingress !== next.ingress ||
    old.egress !== next.egress ||
    old.flags.untracked !== next.flags.untracked ||
    old.flags.preDnat !== next.flags.preDnat ||
    old.flags.applyOnForward !== next.flags.applyOnForward
  );
}
