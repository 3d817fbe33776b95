import type { Selector } from "@margay/api";
import { isPolicyError, type PolicyError } from "../errors.js";
import { LabelIndex } from "../labels/label-index.js";
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND } from "../model/constants.js";
import {
  type NormalizedEndpoint,
  type NormalizedItem,
  type NormalizedPolicy,
  type NormalizedProfile,
  type NormalizedRule,
  type NormalizedTier,
  normalizeHostEndpoint,
  normalizeNetworkSet,
  normalizePolicy,
  normalizeProfile,
  normalizeTier,
  normalizeWorkloadEndpoint,
} from "../model/normalize.js";
import { keyOf, type PolicyModelResource, type ResourceKey, resourceKeyString } from "../model/resources.js";
import { directionalTiers, hostEndpointTiers, workloadPolicies } from "./policy-sorter.js";
import { renderRule } from "./render.js";
import { addressOf, RuleScanner } from "./rule-scanner.js";
import { SelectorRefs } from "./selector-refs.js";
import type {
  FailsafePort,
  HostEndpointUpdate,
  PolicyUpdate,
  RenderedRule,
  WorkloadEndpointUpdate,
} from "./updates.js";

/** Options of {@link createCalcGraph}. */
export interface CalcGraphOptions {
  /**
   * Only endpoints whose `spec.node` equals this are local (get endpoint updates, activate policies).
   * Default: every endpoint is local (a cluster-wide view, as the reference evaluator sees it).
   */
  readonly nodeName?: string | undefined;
  /** Ports a host endpoint always accepts. Default: Calico's `FailsafeInboundHostPorts`. */
  readonly failsafeInbound?: readonly FailsafePort[] | undefined;
  /** Ports a host endpoint may always send to. Default: Calico's `FailsafeOutboundHostPorts`. */
  readonly failsafeOutbound?: readonly FailsafePort[] | undefined;
  /**
   * Told of a resource that cannot be read at all (bad selector, bad endpoint address). The resource is
   * then treated as absent; a bad rule inside a readable policy is not reported here: it becomes a Deny.
   * Default: ignore.
   */
  readonly onInvalid?: ((error: PolicyError, key: string) => void) | undefined;
}

/** Counters, for tests and benchmarks. */
export interface CalcGraphStats {
  readonly items: number;
  readonly selectors: number;
  readonly activePolicies: number;
  readonly activeProfiles: number;
  readonly ipSets: number;
  readonly localEndpoints: number;
}

/**
 * The incremental policy calculation: feed it resources as they change, then {@link CalcGraph.flush} to
 * get the coalesced, ordered updates for the dataplane.
 */
export interface CalcGraph {
  /** Adds or replaces a resource. */
  upsert(resource: PolicyModelResource): void;
  /** Removes a resource (no-op if unknown). */
  remove(key: ResourceKey): void;
  /** Declares the initial snapshot complete: the next flush ends with an `in-sync` update (once). */
  markInSync(): void;
  /** Returns everything that changed since the last flush, in dataplane order. */
  flush(): PolicyUpdate[];
  /** Current sizes. */
  stats(): CalcGraphStats;
}

/** Creates a {@link CalcGraph}. */
export function createCalcGraph(options: CalcGraphOptions = {}): CalcGraph {
  return new Graph(options);
}

interface SentEndpoint {
  readonly type: "workload" | "host";
  readonly id: string;
  readonly json: string;
}

function renderRules(rules: readonly NormalizedRule[], owner: string, dir: "in" | "out"): RenderedRule[] {
  return rules.map((r) => renderRule(r, `${owner}/${dir}/${r.index}`));
}

function emptyProfile(id: string): NormalizedProfile {
  return { id, inbound: [], outbound: [], labels: {} };
}

class Graph implements CalcGraph {
  readonly #opts: CalcGraphOptions;
  readonly #failsafe: HostEndpointUpdate["failsafe"];
  readonly #index: LabelIndex;
  readonly #selectors: SelectorRefs;
  readonly #ruleScanner: RuleScanner;

  readonly #tiers = new Map<string, NormalizedTier>();
  readonly #policies = new Map<string, NormalizedPolicy>();
  readonly #policyKeyById = new Map<string, string>();
  readonly #policiesBySelector = new Map<string, Set<string>>();
  readonly #activePolicies = new Set<string>();
  readonly #profiles = new Map<string, NormalizedProfile>();
  readonly #profileRefs = new Map<string, number>();
  readonly #items = new Map<string, NormalizedItem>();
  readonly #localEndpoints = new Set<string>();
  readonly #selLocalCount = new Map<string, number>();

  readonly #sentPolicies = new Map<string, string>();
  readonly #sentProfiles = new Map<string, string>();
  readonly #sentEndpoints = new Map<string, SentEndpoint>();
  readonly #dirtyPolicies = new Set<string>();
  readonly #dirtyProfiles = new Set<string>();
  readonly #dirtyEndpoints = new Set<string>();
  #inSyncPending = false;
  #inSyncSent = false;

  constructor(opts: CalcGraphOptions) {
    this.#opts = opts;
    this.#failsafe = {
      inbound: opts.failsafeInbound ?? DEFAULT_FAILSAFE_INBOUND,
      outbound: opts.failsafeOutbound ?? DEFAULT_FAILSAFE_OUTBOUND,
    };
    this.#index = new LabelIndex((sel, item, m) => this.#onMatch(sel, item, m));
    this.#selectors = new SelectorRefs(this.#index, (id) => this.#selLocalCount.delete(id));
    this.#ruleScanner = new RuleScanner({
      index: this.#index,
      selectors: this.#selectors,
      items: this.#items,
    });
  }

  stats(): CalcGraphStats {
    return {
      items: this.#items.size,
      selectors: this.#index.selectorCount,
      activePolicies: this.#activePolicies.size,
      activeProfiles: [...this.#profileRefs.values()].filter((n) => n > 0).length,
      ipSets: this.#ruleScanner.size,
      localEndpoints: this.#localEndpoints.size,
    };
  }

  markInSync(): void {
    if (!this.#inSyncSent) this.#inSyncPending = true;
  }

  upsert(resource: PolicyModelResource): void {
    const key = resourceKeyString(keyOf(resource));
    try {
      switch (resource.kind) {
        case "Tier":
          this.#setTier(normalizeTier(resource));
          return;
        case "NetworkPolicy":
        case "GlobalNetworkPolicy":
          this.#setPolicy(key, normalizePolicy(resource));
          return;
        case "Profile":
          this.#setProfile(normalizeProfile(resource));
          return;
        case "WorkloadEndpoint":
          this.#setItem(normalizeWorkloadEndpoint(resource));
          return;
        case "HostEndpoint":
          this.#setItem(normalizeHostEndpoint(resource));
          return;
        case "NetworkSet":
        case "GlobalNetworkSet":
          this.#setItem(normalizeNetworkSet(resource));
          return;
      }
    } catch (e) {
      if (!isPolicyError(e)) throw e;
      this.#removeKey(keyOf(resource), key);
      this.#opts.onInvalid?.(e, key);
    }
  }

  remove(key: ResourceKey): void {
    this.#removeKey(key, resourceKeyString(key));
  }

  #removeKey(key: ResourceKey, keyString: string): void {
    switch (key.kind) {
      case "Tier":
        if (this.#tiers.delete(key.name)) this.#allLocalDirty();
        return;
      case "NetworkPolicy":
      case "GlobalNetworkPolicy":
        this.#setPolicy(keyString, undefined);
        return;
      case "Profile":
        this.#deleteProfile(key.name);
        return;
      default:
        this.#deleteItem(keyString);
    }
  }

  // ---- selectors -------------------------------------------------------------------------------

  #onMatch(selId: string, itemKey: string, matches: boolean): void {
    if (this.#localEndpoints.has(itemKey)) {
      const n = (this.#selLocalCount.get(selId) ?? 0) + (matches ? 1 : -1);
      this.#selLocalCount.set(selId, n);
      const pols = this.#policiesBySelector.get(selId);
      if (pols !== undefined) {
        this.#dirtyEndpoints.add(itemKey);
        if ((matches && n === 1) || (!matches && n === 0)) for (const pk of pols) this.#updateActivity(pk);
      }
    }
    this.#ruleScanner.onMatch(selId, itemKey, matches);
  }

  // ---- tiers and policies ----------------------------------------------------------------------

  #setTier(t: NormalizedTier): void {
    this.#tiers.set(t.name, t);
    this.#allLocalDirty();
  }

  #allLocalDirty(): void {
    for (const k of this.#localEndpoints) this.#dirtyEndpoints.add(k);
  }

  #markSelected(sel: Selector): void {
    for (const item of this.#index.itemsMatching(sel.id)) {
      if (this.#localEndpoints.has(item)) this.#dirtyEndpoints.add(item);
    }
  }

  #updateActivity(key: string): void {
    const p = this.#policies.get(key);
    const active = p !== undefined && (this.#selLocalCount.get(p.selector.id) ?? 0) > 0;
    const was = this.#activePolicies.has(key);
    if (active === was || p === undefined) return;
    if (active) {
      this.#activePolicies.add(key);
      this.#ruleScanner.acquireRules(p.inbound);
      this.#ruleScanner.acquireRules(p.outbound);
    } else {
      this.#activePolicies.delete(key);
      this.#ruleScanner.releaseRules(p.inbound);
      this.#ruleScanner.releaseRules(p.outbound);
    }
    this.#dirtyPolicies.add(p.id);
  }

  #setPolicy(key: string, next: NormalizedPolicy | undefined): void {
    const old = this.#policies.get(key);
    if (old === undefined && next === undefined) return;
    const wasActive = this.#activePolicies.has(key);
    if (next !== undefined) {
      this.#selectors.acquire(next.selector);
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
    const placementChanged =
      old === undefined ||
      next === undefined ||
      old.selector.id !== next.selector.id ||
      old.id !== next.id ||
      old.order !== next.order ||
      old.ingress !== next.ingress ||
      old.egress !== next.egress ||
      old.flags.untracked !== next.flags.untracked ||
      old.flags.preDnat !== next.flags.preDnat ||
      old.flags.applyOnForward !== next.flags.applyOnForward;
    if (placementChanged) {
      if (old !== undefined) this.#markSelected(old.selector);
      if (next !== undefined) this.#markSelected(next.selector);
    }
    const active = next !== undefined && (this.#selLocalCount.get(next.selector.id) ?? 0) > 0;
    // Take the new version's IP sets before dropping the old one's, so shared sets never churn.
    if (active) {
      this.#activePolicies.add(key);
      this.#ruleScanner.acquireRules(next.inbound);
      this.#ruleScanner.acquireRules(next.outbound);
    } else this.#activePolicies.delete(key);
    if (wasActive && old !== undefined) {
      this.#ruleScanner.releaseRules(old.inbound);
      this.#ruleScanner.releaseRules(old.outbound);
    }
    if (old !== undefined) this.#selectors.release(old.selector);
  }

  // ---- profiles --------------------------------------------------------------------------------

  #setProfile(p: NormalizedProfile): void {
    const old = this.#profiles.get(p.id);
    this.#profiles.set(p.id, p);
    this.#index.setParent(p.id, p.labels);
    if ((this.#profileRefs.get(p.id) ?? 0) > 0) {
      this.#ruleScanner.acquireRules(p.inbound);
      this.#ruleScanner.acquireRules(p.outbound);
      if (old !== undefined) {
        this.#ruleScanner.releaseRules(old.inbound);
        this.#ruleScanner.releaseRules(old.outbound);
      }
      this.#dirtyProfiles.add(p.id);
    }
  }

  #deleteProfile(id: string): void {
    const old = this.#profiles.get(id);
    if (old === undefined) return;
    this.#profiles.delete(id);
    this.#index.deleteParent(id);
    if ((this.#profileRefs.get(id) ?? 0) > 0) {
      this.#ruleScanner.releaseRules(old.inbound);
      this.#ruleScanner.releaseRules(old.outbound);
      this.#dirtyProfiles.add(id);
    }
  }

  #refProfile(id: string, delta: 1 | -1): void {
    const n = (this.#profileRefs.get(id) ?? 0) + delta;
    if (n === 0) this.#profileRefs.delete(id);
    else this.#profileRefs.set(id, n);
    if ((delta === 1 && n === 1) || (delta === -1 && n === 0)) {
      const p = this.#profiles.get(id);
      if (p !== undefined) {
        if (delta === 1) {
          this.#ruleScanner.acquireRules(p.inbound);
          this.#ruleScanner.acquireRules(p.outbound);
        } else {
          this.#ruleScanner.releaseRules(p.inbound);
          this.#ruleScanner.releaseRules(p.outbound);
        }
      }
      this.#dirtyProfiles.add(id);
    }
  }

  // ---- endpoints and network sets --------------------------------------------------------------

  #isLocal(item: NormalizedItem): boolean {
    if (item.type === "network-set") return false;
    const node = this.#opts.nodeName;
    return node === undefined || (item as NormalizedEndpoint).node === node;
  }

  #setItem(item: NormalizedItem): void {
    const old = this.#items.get(item.key);
    const local = this.#isLocal(item);
    if (old !== undefined && (old.type !== item.type || this.#localEndpoints.has(item.key) !== local)) {
      this.#deleteItem(item.key);
      this.#setItem(item);
      return;
    }
    this.#items.set(item.key, item);
    if (local) {
      this.#localEndpoints.add(item.key);
      this.#dirtyEndpoints.add(item.key);
      // An endpoint holds one reference per distinct profile, however often it lists it.
      const before = new Set(old === undefined ? [] : (old as NormalizedEndpoint).profiles);
      const after = new Set((item as NormalizedEndpoint).profiles);
      for (const p of after) if (!before.has(p)) this.#refProfile(p, 1);
      for (const p of before) if (!after.has(p)) this.#refProfile(p, -1);
    }
    if (old !== undefined) this.#ruleScanner.itemChanged(old, item);
    this.#index.setItem(item.key, item.labels, item.parents);
  }

  #deleteItem(key: string): void {
    const old = this.#items.get(key);
    if (old === undefined) return;
    this.#index.deleteItem(key);
    if (this.#localEndpoints.has(key)) {
      for (const p of new Set((old as NormalizedEndpoint).profiles)) this.#refProfile(p, -1);
      this.#localEndpoints.delete(key);
      this.#dirtyEndpoints.add(key);
    }
    this.#items.delete(key);
  }

  // ---- output ----------------------------------------------------------------------------------

  #policiesOf(key: string): NormalizedPolicy[] {
    const out: NormalizedPolicy[] = [];
    for (const selId of this.#index.selectorsMatching(key)) {
      for (const pk of this.#policiesBySelector.get(selId) ?? []) out.push(this.#policies.get(pk)!);
    }
    return out;
  }

  #endpointUpdate(ep: NormalizedEndpoint): WorkloadEndpointUpdate | HostEndpointUpdate {
    const policies = this.#policiesOf(ep.key);
    if (ep.type === "workload") {
      return {
        kind: "workload-endpoint-update",
        id: ep.id,
        ifname: ep.ifname,
        mac: ep.mac,
        ipNetworks: ep.nets.map((c) => c.text),
        tiers: directionalTiers(workloadPolicies(policies), this.#tiers),
        profileIds: ep.profiles,
      };
    }
    return {
      kind: "host-endpoint-update",
      id: ep.id,
      ifname: ep.ifname,
      expectedIps: ep.nets.map((c) => addressOf(c.text)),
      ...hostEndpointTiers(policies, this.#tiers),
      profileIds: ep.profiles,
      failsafe: this.#failsafe,
    };
  }

  flush(): PolicyUpdate[] {
    const ipSets = this.#ruleScanner.flush();

    const policyUpdates: PolicyUpdate[] = [];
    const policyRemoves: PolicyUpdate[] = [];
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
          policyUpdates.push(update);
        }
      } else if (this.#sentPolicies.delete(id)) policyRemoves.push({ kind: "active-policy-remove", id });
    }
    this.#dirtyPolicies.clear();

    const profileUpdates: PolicyUpdate[] = [];
    const profileRemoves: PolicyUpdate[] = [];
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
          profileUpdates.push(update);
        }
      } else if (this.#sentProfiles.delete(id)) profileRemoves.push({ kind: "active-profile-remove", id });
    }
    this.#dirtyProfiles.clear();

    const endpointUpdates: PolicyUpdate[] = [];
    const endpointRemoves: PolicyUpdate[] = [];
    for (const key of [...this.#dirtyEndpoints].sort()) {
      const item = this.#items.get(key);
      if (item !== undefined && this.#localEndpoints.has(key)) {
        const ep = item as NormalizedEndpoint;
        const update = this.#endpointUpdate(ep);
        const json = JSON.stringify(update);
        if (this.#sentEndpoints.get(key)?.json !== json) {
          this.#sentEndpoints.set(key, { type: ep.type as "workload" | "host", id: ep.id, json });
          endpointUpdates.push(update);
        }
      } else {
        const sent = this.#sentEndpoints.get(key);
        if (sent !== undefined) {
          this.#sentEndpoints.delete(key);
          endpointRemoves.push(
            sent.type === "workload"
              ? { kind: "workload-endpoint-remove", id: sent.id }
              : { kind: "host-endpoint-remove", id: sent.id },
          );
        }
      }
    }
    this.#dirtyEndpoints.clear();

    const out = [
      ...ipSets.updates,
      ...policyUpdates,
      ...profileUpdates,
      ...endpointUpdates,
      ...endpointRemoves,
      ...policyRemoves,
      ...profileRemoves,
      ...ipSets.removes,
    ];
    if (this.#inSyncPending) {
      out.push({ kind: "in-sync" });
      this.#inSyncPending = false;
      this.#inSyncSent = true;
    }
    return out;
  }
}
