/**
 * The policy resolver (Felix's PolicyResolver): for each local endpoint, the policies that select it,
 * grouped into ordered tiers, sent as endpoint updates when they (or the endpoint) change.
 */
import type { LabelIndex } from "../labels/label-index.js";
import type {
  NormalizedEndpoint,
  NormalizedItem,
  NormalizedPolicy,
  NormalizedTier,
} from "../model/normalize.js";
import { directionalTiers, hostEndpointTiers, workloadPolicies } from "./policy-sorter.js";
import { addressOf } from "./rule-scanner.js";
import type { HostEndpointUpdate, PolicyUpdate, WorkloadEndpointUpdate } from "@margay/dataplane-contract";

/** What the resolver reads from the graph it belongs to. */
export interface PolicyResolverContext {
  /** The shared label index (which selectors match an endpoint, which endpoints a selector). */
  readonly index: LabelIndex;
  /** Every labelled item by key. */
  readonly items: ReadonlyMap<string, NormalizedItem>;
  /** Keys of the local endpoints (the only ones that get endpoint updates). */
  readonly localEndpoints: ReadonlySet<string>;
  /** The policies whose selector is one of these. */
  readonly policiesMatching: (selectorIds: Iterable<string>) => NormalizedPolicy[];
  /** Ports every host endpoint accepts / may send to. */
  readonly failsafe: HostEndpointUpdate["failsafe"];
}

/** Endpoint updates of one flush: updates go after policies and profiles, removes before theirs. */
export interface EndpointFlush {
  readonly updates: PolicyUpdate[];
  readonly removes: PolicyUpdate[];
}

interface SentEndpoint {
  readonly type: "workload" | "host";
  readonly id: string;
  readonly json: string;
}

/** Keeps the tiers and the endpoints whose ordered policy lists must be recomputed at the next flush. */
export class PolicyResolver {
  readonly #ctx: PolicyResolverContext;
  readonly #tiers = new Map<string, NormalizedTier>();
  readonly #sent = new Map<string, SentEndpoint>();
  readonly #dirty = new Set<string>();

  /** @param ctx - the graph's shared index, items, local endpoints and policy lookup. */
  constructor(ctx: PolicyResolverContext) {
    this.#ctx = ctx;
  }

  /** Adds or replaces a tier: every local endpoint's order may change. */
  setTier(t: NormalizedTier): void {
    this.#tiers.set(t.name, t);
    this.#allLocalDirty();
  }

  /** Removes a tier (no-op if unknown); its policies fall back to an implicit or fail-closed tier. */
  deleteTier(name: string): void {
    if (this.#tiers.delete(name)) this.#allLocalDirty();
  }

  /** A local endpoint (or one that just stopped being so) must be re-sent or removed. */
  markDirty(itemKey: string): void {
    this.#dirty.add(itemKey);
  }

  /** Every local endpoint a selector matches must be recomputed. */
  markSelected(selectorId: string): void {
    const { index, localEndpoints } = this.#ctx;
    const matching = index.itemsMatching(selectorId);
    // Walk the smaller side: with every endpoint known cluster-wide, a selector matches many more remote
    // endpoints than there are local ones, and walking its matches made each policy change cost O(cluster).
    if (localEndpoints.size < matching.size) {
      for (const item of localEndpoints) if (matching.has(item)) this.#dirty.add(item);
    } else {
      for (const item of matching) if (localEndpoints.has(item)) this.#dirty.add(item);
    }
  }

  /** Endpoint updates and removes since the last flush (unchanged content is not resent). */
  flush(): EndpointFlush {
    const { items, localEndpoints } = this.#ctx;
    const updates: PolicyUpdate[] = [];
    const removes: PolicyUpdate[] = [];
    for (const key of [...this.#dirty].sort()) {
      const item = items.get(key);
      if (item !== undefined && localEndpoints.has(key)) {
        const ep = item as NormalizedEndpoint;
        const update = this.#endpointUpdate(ep);
        const json = JSON.stringify(update);
        if (this.#sent.get(key)?.json !== json) {
          this.#sent.set(key, { type: ep.type as "workload" | "host", id: ep.id, json });
          updates.push(update);
        }
      } else {
        const sent = this.#sent.get(key);
        if (sent !== undefined) {
          this.#sent.delete(key);
          removes.push(
            sent.type === "workload"
              ? { kind: "workload-endpoint-remove", id: sent.id }
              : { kind: "host-endpoint-remove", id: sent.id },
          );
        }
      }
    }
    this.#dirty.clear();
    return { updates, removes };
  }

  #allLocalDirty(): void {
    for (const k of this.#ctx.localEndpoints) this.#dirty.add(k);
  }

  #endpointUpdate(ep: NormalizedEndpoint): WorkloadEndpointUpdate | HostEndpointUpdate {
    const policies = this.#ctx.policiesMatching(this.#ctx.index.selectorsMatching(ep.key));
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
      failsafe: this.#ctx.failsafe,
    };
  }
}
