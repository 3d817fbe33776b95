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
import { protocolName } from "../model/protocol.js";
import { keyOf, type PolicyModelResource, type ResourceKey, resourceKeyString } from "../model/resources.js";
import { directionalTiers, hostEndpointTiers, workloadPolicies } from "./policy-sorter.js";
import { type IpSetSpec, renderRule, ruleIpSets } from "./render.js";
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

interface SentEndpoint {
  readonly type: "workload" | "host";
  readonly id: string;
  readonly json: string;
}

/** Address part of a CIDR text (`10.0.0.1/32` → `10.0.0.1`). */
function addressOf(cidrText: string): string {
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

  readonly #tiers = new Map<string, NormalizedTier>();
  readonly #policies = new Map<string, NormalizedPolicy>();
  readonly #policyKeyById = new Map<string, string>();
  readonly #policiesBySelector = new Map<string, Set<string>>();
  readonly #activePolicies = new Set<string>();
  readonly #profiles = new Map<string, NormalizedProfile>();
  readonly #profileRefs = new Map<string, number>();
  readonly #items = new Map<string, NormalizedItem>();
  readonly #localEndpoints = new Set<string>();
  readonly #selectorRefs = new Map<string, number>();
  readonly #selLocalCount = new Map<string, number>();
  readonly #ipSets = new Map<string, IpSetState>();
  readonly #ipSetsBySelector = new Map<string, Set<string>>();

  readonly #sentIpSets = new Set<string>();
  readonly #sentPolicies = new Map<string, string>();
  readonly #sentProfiles = new Map<string, string>();
  readonly #sentEndpoints = new Map<string, SentEndpoint>();
  readonly #dirtyPolicies = new Set<string>();
  readonly #dirtyProfiles = new Set<string>();
  readonly #dirtyEndpoints = new Set<string>();
  readonly #dirtyIpSets = new Set<string>();
  #inSyncPending = false;
  #inSyncSent = false;

  constructor(opts: CalcGraphOptions) {
    this.#opts = opts;
    this.#failsafe = {
      inbound: opts.failsafeInbound ?? DEFAULT_FAILSAFE_INBOUND,
      outbound: opts.failsafeOutbound ?? DEFAULT_FAILSAFE_OUTBOUND,
    };
    this.#index = new LabelIndex((sel, item, m) => this.#onMatch(sel, item, m));
  }

  stats(): CalcGraphStats {
    return {
      items: this.#items.size,
      selectors: this.#index.selectorCount,
      activePolicies: this.#activePolicies.size,
      activeProfiles: [...this.#profileRefs.values()].filter((n) => n > 0).length,
      ipSets: this.#ipSets.size,
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

  #acquireSelector(sel: Selector): void {
    const n = this.#selectorRefs.get(sel.id) ?? 0;
    this.#selectorRefs.set(sel.id, n + 1);
    if (n === 0) this.#index.addSelector(sel.id, sel);
  }

  #releaseSelector(sel: Selector): void {
    const n = this.#selectorRefs.get(sel.id) ?? 0;
    if (n <= 1) {
      this.#selectorRefs.delete(sel.id);
      this.#selLocalCount.delete(sel.id);
      this.#index.removeSelector(sel.id);
    } else this.#selectorRefs.set(sel.id, n - 1);
  }

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
    const sets = this.#ipSetsBySelector.get(selId);
    if (sets === undefined) return;
    for (const setId of [...sets]) {
      const set = this.#ipSets.get(setId);
      if (set === undefined) continue;
      if (matches) this.#addContrib(set, itemKey, memberContribution(set.spec, this.#items.get(itemKey)!));
      else this.#removeContrib(set, itemKey);
    }
  }

  // ---- IP sets ---------------------------------------------------------------------------------

  #memberChanged(set: IpSetState, member: string, wasPresent: boolean): void {
    if (set.full) return;
    if (!set.dirty.has(member)) set.dirty.set(member, wasPresent);
    this.#dirtyIpSets.add(set.spec.id);
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

  #acquireIpSet(spec: IpSetSpec): void {
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
    this.#dirtyIpSets.add(spec.id);
    let users = this.#ipSetsBySelector.get(spec.selector.id);
    if (users === undefined) this.#ipSetsBySelector.set(spec.selector.id, (users = new Set()));
    users.add(spec.id);
    // Acquire after registering as a user: if the selector is new, its initial matches fill the set.
    const known = this.#index.hasSelector(spec.selector.id);
    this.#acquireSelector(spec.selector);
    if (known) {
      for (const itemKey of this.#index.itemsMatching(spec.selector.id)) {
        this.#addContrib(set, itemKey, memberContribution(spec, this.#items.get(itemKey)!));
      }
    }
  }

  #releaseIpSet(id: string): void {
    const set = this.#ipSets.get(id)!;
    if (--set.refs > 0) return;
    this.#ipSets.delete(id);
    this.#dirtyIpSets.add(id);
    const users = this.#ipSetsBySelector.get(set.spec.selector.id)!;
    users.delete(id);
    if (users.size === 0) this.#ipSetsBySelector.delete(set.spec.selector.id);
    this.#releaseSelector(set.spec.selector);
  }

  #acquireRules(rules: readonly NormalizedRule[]): void {
    for (const r of rules) for (const s of ruleIpSets(r)) this.#acquireIpSet(s);
  }

  #releaseRules(rules: readonly NormalizedRule[]): void {
    for (const r of rules) for (const s of ruleIpSets(r)) this.#releaseIpSet(s.id);
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
      this.#acquireRules(p.inbound);
      this.#acquireRules(p.outbound);
    } else {
      this.#activePolicies.delete(key);
      this.#releaseRules(p.inbound);
      this.#releaseRules(p.outbound);
    }
    this.#dirtyPolicies.add(p.id);
  }

  #setPolicy(key: string, next: NormalizedPolicy | undefined): void {
    const old = this.#policies.get(key);
    if (old === undefined && next === undefined) return;
    const wasActive = this.#activePolicies.has(key);
    if (next !== undefined) {
      this.#acquireSelector(next.selector);
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
      this.#acquireRules(next.inbound);
      this.#acquireRules(next.outbound);
    } else this.#activePolicies.delete(key);
    if (wasActive && old !== undefined) {
      this.#releaseRules(old.inbound);
      this.#releaseRules(old.outbound);
    }
    if (old !== undefined) this.#releaseSelector(old.selector);
  }

  // ---- profiles --------------------------------------------------------------------------------

  #setProfile(p: NormalizedProfile): void {
    const old = this.#profiles.get(p.id);
    this.#profiles.set(p.id, p);
    this.#index.setParent(p.id, p.labels);
    if ((this.#profileRefs.get(p.id) ?? 0) > 0) {
      this.#acquireRules(p.inbound);
      this.#acquireRules(p.outbound);
      if (old !== undefined) {
        this.#releaseRules(old.inbound);
        this.#releaseRules(old.outbound);
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
      this.#releaseRules(old.inbound);
      this.#releaseRules(old.outbound);
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
          this.#acquireRules(p.inbound);
          this.#acquireRules(p.outbound);
        } else {
          this.#releaseRules(p.inbound);
          this.#releaseRules(p.outbound);
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
    if (old !== undefined && (!sameNets(old, item) || !samePorts(old, item))) {
      for (const selId of this.#index.selectorsMatching(item.key)) {
        for (const setId of this.#ipSetsBySelector.get(selId) ?? []) {
          const set = this.#ipSets.get(setId)!;
          this.#removeContrib(set, item.key);
          this.#addContrib(set, item.key, memberContribution(set.spec, item));
        }
      }
    }
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
    const ipSetUpdates: PolicyUpdate[] = [];
    const ipSetRemoves: PolicyUpdate[] = [];
    for (const id of [...this.#dirtyIpSets].sort()) {
      const set = this.#ipSets.get(id);
      if (set === undefined) {
        if (this.#sentIpSets.delete(id)) ipSetRemoves.push({ kind: "ip-set-remove", id });
        continue;
      }
      if (set.full) {
        ipSetUpdates.push({
          kind: "ip-set-update",
          id,
          type: set.spec.namedPort === undefined ? "net" : "ip-and-port",
          members: [...set.members.keys()].sort(),
        });
        set.full = false;
        this.#sentIpSets.add(id);
      } else {
        const added: string[] = [];
        const removed: string[] = [];
        for (const [m, was] of set.dirty) {
          const now = set.members.has(m);
          if (now && !was) added.push(m);
          else if (!now && was) removed.push(m);
        }
        if (added.length + removed.length > 0) {
          ipSetUpdates.push({
            kind: "ip-set-delta-update",
            id,
            added: added.sort(),
            removed: removed.sort(),
          });
        }
      }
      set.dirty.clear();
    }
    this.#dirtyIpSets.clear();

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
      ...ipSetUpdates,
      ...policyUpdates,
      ...profileUpdates,
      ...endpointUpdates,
      ...endpointRemoves,
      ...policyRemoves,
      ...profileRemoves,
      ...ipSetRemoves,
    ];
    if (this.#inSyncPending) {
      out.push({ kind: "in-sync" });
      this.#inSyncPending = false;
      this.#inSyncSent = true;
    }
    return out;
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
