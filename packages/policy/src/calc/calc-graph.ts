/**
 * The calculation graph's facade (Felix's calc graph and dispatcher in one): it normalizes each resource,
 * hands it to the calculator that owns its kind, and orders their output. The parts:
 * - {@link ActiveRulesCalculator}: which policies and profiles local endpoints make active;
 * - {@link RuleScanner}: the refcounted IP sets those active rules need, and their members;
 * - {@link PolicyResolver}: each local endpoint's ordered tiers of policies;
 * all three fed by one shared {@link LabelIndex} (with {@link SelectorRefs} counting its selectors).
 */
import { type Logger, silentLogger } from "@margay/api";
import { isPolicyError, type PolicyError } from "../errors.js";
import { LabelIndex } from "../labels/label-index.js";
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND, LABEL_NAMESPACE } from "../model/constants.js";
import {
  type NormalizedEndpoint,
  type NormalizedItem,
  type NormalizedRule,
  normalizeHostEndpoint,
  normalizeNetworkSet,
  normalizePolicy,
  normalizeProfile,
  normalizeTier,
  normalizeWorkloadEndpoint,
} from "../model/normalize.js";
import { keyOf, type PolicyModelResource, type ResourceKey, resourceKeyString } from "../model/resources.js";
import { ActiveRulesCalculator } from "./active-rules.js";
import { PolicyResolver } from "./policy-resolver.js";
import { RuleScanner } from "./rule-scanner.js";
import { SelectorRefs } from "./selector-refs.js";
import type { FailsafePort, PolicyUpdate } from "@margay/dataplane-contract";

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
  /**
   * Structured logger (pino-compatible); records carry `component: "policy"`. Each resource treated as
   * absent (`warn`, "policy resource invalid; treated as absent") and each rule that failed closed (`warn`,
   * "policy rule invalid; it denies") is logged. Default: silent.
   */
  readonly logger?: Logger | undefined;
}

/** Counters, for tests and benchmarks. */
export interface CalcGraphStats {
  readonly items: number;
  readonly selectors: number;
  readonly activePolicies: number;
  readonly activeProfiles: number;
  readonly ipSets: number;
  readonly localEndpoints: number;
  /**
   * Selector evaluations so far (the label index matching items against selectors): work a benchmark
   * can divide by the changes it made.
   */
  readonly selectorsEvaluated: number;
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

class Graph implements CalcGraph {
  readonly #opts: CalcGraphOptions;
  readonly #log: Logger;
  readonly #index: LabelIndex;
  readonly #items = new Map<string, NormalizedItem>();
  readonly #localEndpoints = new Set<string>();
  readonly #ruleScanner: RuleScanner;
  readonly #activeRules: ActiveRulesCalculator;
  readonly #resolver: PolicyResolver;
  #inSyncPending = false;
  #inSyncSent = false;

  constructor(opts: CalcGraphOptions) {
    this.#opts = opts;
    this.#log = (opts.logger ?? silentLogger).child({ component: "policy" });
    const index = new LabelIndex((sel, item, m) => this.#onMatch(sel, item, m), {
      scopeLabel: LABEL_NAMESPACE,
    });
    const selectors = new SelectorRefs(index, (id) => this.#activeRules.selectorDropped(id));
    this.#index = index;
    this.#ruleScanner = new RuleScanner({ index, selectors, items: this.#items });
    this.#resolver = new PolicyResolver({
      index,
      items: this.#items,
      localEndpoints: this.#localEndpoints,
      policiesMatching: (selIds) => this.#activeRules.policiesMatching(selIds),
      failsafe: {
        inbound: opts.failsafeInbound ?? DEFAULT_FAILSAFE_INBOUND,
        outbound: opts.failsafeOutbound ?? DEFAULT_FAILSAFE_OUTBOUND,
      },
    });
    this.#activeRules = new ActiveRulesCalculator({
      index,
      selectors,
      ruleScanner: this.#ruleScanner,
      endpoints: this.#resolver,
    });
  }

  stats(): CalcGraphStats {
    return {
      items: this.#items.size,
      selectors: this.#index.selectorCount,
      activePolicies: this.#activeRules.activePolicyCount,
      activeProfiles: this.#activeRules.activeProfileCount,
      ipSets: this.#ruleScanner.size,
      localEndpoints: this.#localEndpoints.size,
      selectorsEvaluated: this.#index.selectorsEvaluated,
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
          this.#resolver.setTier(normalizeTier(resource));
          return;
        case "NetworkPolicy":
        case "GlobalNetworkPolicy": {
          const policy = normalizePolicy(resource);
          this.#logFailedClosed(key, policy);
          this.#activeRules.setPolicy(key, policy);
          return;
        }
        case "Profile": {
          const profile = normalizeProfile(resource);
          this.#logFailedClosed(key, profile);
          this.#activeRules.setProfile(profile);
          return;
        }
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
      this.#log.warn({ key, code: e.code, error: e.message }, "policy resource invalid; treated as absent");
      this.#opts.onInvalid?.(e, key);
    }
  }

  /** Logs the rules of a policy or profile that normalized to a fail-closed Deny. */
  #logFailedClosed(
    key: string,
    p: { readonly inbound: readonly NormalizedRule[]; readonly outbound: readonly NormalizedRule[] },
  ): void {
    for (const [direction, list] of [
      ["inbound", p.inbound],
      ["outbound", p.outbound],
    ] as const) {
      for (const r of list) {
        if (r.invalid !== undefined) {
          this.#log.warn(
            { key, direction, rule: r.index, reason: r.invalid },
            "policy rule invalid; it denies",
          );
        }
      }
    }
  }

  remove(key: ResourceKey): void {
    this.#removeKey(key, resourceKeyString(key));
  }

  flush(): PolicyUpdate[] {
    const ipSets = this.#ruleScanner.flush();
    const policies = this.#activeRules.flushPolicies();
    const profiles = this.#activeRules.flushProfiles();
    const endpoints = this.#resolver.flush();
    // Dataplane order: what is referenced is added before its users, and removed after them.
    const out = [
      ...ipSets.updates,
      ...policies.updates,
      ...profiles.updates,
      ...endpoints.updates,
      ...endpoints.removes,
      ...policies.removes,
      ...profiles.removes,
      ...ipSets.removes,
    ];
    if (this.#inSyncPending) {
      out.push({ kind: "in-sync" });
      this.#inSyncPending = false;
      this.#inSyncSent = true;
    }
    return out;
  }

  #removeKey(key: ResourceKey, keyString: string): void {
    switch (key.kind) {
      case "Tier":
        this.#resolver.deleteTier(key.name);
        return;
      case "NetworkPolicy":
      case "GlobalNetworkPolicy":
        this.#activeRules.setPolicy(keyString, undefined);
        return;
      case "Profile":
        this.#activeRules.deleteProfile(key.name);
        return;
      default:
        this.#deleteItem(keyString);
    }
  }

  /** The shared index's one listener: policy activity for local endpoints, then IP-set membership. */
  #onMatch(selId: string, itemKey: string, matches: boolean): void {
    if (this.#localEndpoints.has(itemKey)) this.#activeRules.onLocalMatch(selId, itemKey, matches);
    this.#ruleScanner.onMatch(selId, itemKey, matches);
  }

  // ---- endpoints and network sets (the local-endpoint filter) ----------------------------------

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
      this.#resolver.markDirty(item.key);
      // An endpoint holds one reference per distinct profile, however often it lists it.
      const before = new Set(old === undefined ? [] : (old as NormalizedEndpoint).profiles);
      const after = new Set((item as NormalizedEndpoint).profiles);
      for (const p of after) if (!before.has(p)) this.#activeRules.refProfile(p, 1);
      for (const p of before) if (!after.has(p)) this.#activeRules.refProfile(p, -1);
    }
    if (old !== undefined) this.#ruleScanner.itemChanged(old, item);
    this.#index.setItem(item.key, item.labels, item.parents);
  }

  #deleteItem(key: string): void {
    const old = this.#items.get(key);
    if (old === undefined) return;
    this.#index.deleteItem(key);
    if (this.#localEndpoints.has(key)) {
      for (const p of new Set((old as NormalizedEndpoint).profiles)) this.#activeRules.refProfile(p, -1);
      this.#localEndpoints.delete(key);
      this.#resolver.markDirty(key);
    }
    this.#items.delete(key);
  }
}
