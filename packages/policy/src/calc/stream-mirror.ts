import { PolicyError, PolicyErrorCode } from "../errors.js";
import type {
  ActivePolicyUpdate,
  ActiveProfileUpdate,
  DirectionalTiers,
  HostEndpointUpdate,
  IpSetType,
  PolicyUpdate,
  RenderedRule,
  WorkloadEndpointUpdate,
} from "@margay/dataplane-contract";

/** An IP set as a dataplane holds it. */
export interface MirroredIpSet {
  readonly type: IpSetType;
  readonly members: Set<string>;
}

/**
 * The state a dataplane holds after applying an update stream, with the stream's contract checked on
 * every update. Use it to test a producer (the calc graph) or as the reference a dataplane's own state
 * is compared with.
 */
export interface StreamMirror {
  readonly ipSets: ReadonlyMap<string, MirroredIpSet>;
  readonly policies: ReadonlyMap<string, ActivePolicyUpdate>;
  readonly profiles: ReadonlyMap<string, ActiveProfileUpdate>;
  readonly workloadEndpoints: ReadonlyMap<string, WorkloadEndpointUpdate>;
  readonly hostEndpoints: ReadonlyMap<string, HostEndpointUpdate>;
  /** True once `in-sync` was applied. */
  readonly inSync: boolean;
  /**
   * Applies updates in order.
   *
   * @throws {@link PolicyError} `stream-violation` when an update refers to something not yet sent, removes
   *   something still referenced, sends a delta that does not fit, or repeats `in-sync`.
   */
  apply(updates: Iterable<PolicyUpdate>): void;
  /** A canonical, JSON-comparable picture of the state (sorted keys and members). */
  snapshot(): MirrorSnapshot;
}

/** See {@link StreamMirror.snapshot}. */
export interface MirrorSnapshot {
  readonly ipSets: Readonly<
    Record<string, { readonly type: IpSetType; readonly members: readonly string[] }>
  >;
  readonly policies: Readonly<Record<string, ActivePolicyUpdate>>;
  readonly profiles: Readonly<Record<string, ActiveProfileUpdate>>;
  readonly workloadEndpoints: Readonly<Record<string, WorkloadEndpointUpdate>>;
  readonly hostEndpoints: Readonly<Record<string, HostEndpointUpdate>>;
}

function violation(message: string, update: PolicyUpdate): never {
  throw new PolicyError(PolicyErrorCode.StreamViolation, message, { value: update });
}

function ruleSets(r: RenderedRule): string[] {
  return [
    ...r.srcIpSetIds,
    ...r.notSrcIpSetIds,
    ...r.srcNamedPortIpSetIds,
    ...r.notSrcNamedPortIpSetIds,
    ...r.dstIpSetIds,
    ...r.notDstIpSetIds,
    ...r.dstNamedPortIpSetIds,
    ...r.notDstNamedPortIpSetIds,
  ];
}

function tierPolicyIds(t: DirectionalTiers): string[] {
  return [...t.ingress, ...t.egress].flatMap((x) => x.policyIds);
}

function endpointPolicyIds(u: WorkloadEndpointUpdate | HostEndpointUpdate): string[] {
  if (u.kind === "workload-endpoint-update") return tierPolicyIds(u.tiers);
  return [u.tiers, u.untrackedTiers, u.preDnatTiers, u.forwardTiers].flatMap(tierPolicyIds);
}

function sortedRecord<V>(m: ReadonlyMap<string, V>): Record<string, V> {
  return Object.fromEntries([...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Creates an empty {@link StreamMirror}. */
export function createStreamMirror(): StreamMirror {
  const ipSets = new Map<string, MirroredIpSet>();
  const policies = new Map<string, ActivePolicyUpdate>();
  const profiles = new Map<string, ActiveProfileUpdate>();
  const wep = new Map<string, WorkloadEndpointUpdate>();
  const hep = new Map<string, HostEndpointUpdate>();
  let inSync = false;

  const checkRules = (u: ActivePolicyUpdate | ActiveProfileUpdate) => {
    for (const r of [...u.inbound, ...u.outbound]) {
      for (const id of ruleSets(r))
        if (!ipSets.has(id)) violation(`${u.id} references unknown IP set ${id}`, u);
    }
  };
  const checkEndpoint = (u: WorkloadEndpointUpdate | HostEndpointUpdate) => {
    for (const id of endpointPolicyIds(u))
      if (!policies.has(id)) violation(`${u.id} references unknown policy ${id}`, u);
    for (const id of u.profileIds)
      if (!profiles.has(id)) violation(`${u.id} references unknown profile ${id}`, u);
  };
  const endpoints = () => [...wep.values(), ...hep.values()];
  const rulesOwners = () => [...policies.values(), ...profiles.values()];

  const applyOne = (u: PolicyUpdate): void => {
    switch (u.kind) {
      case "ip-set-update":
        ipSets.set(u.id, { type: u.type, members: new Set(u.members) });
        return;
      case "ip-set-delta-update": {
        const set = ipSets.get(u.id) ?? violation(`delta for unknown IP set ${u.id}`, u);
        for (const m of u.removed)
          if (!set.members.delete(m)) violation(`delta removes absent member ${m}`, u);
        for (const m of u.added) {
          if (set.members.has(m)) violation(`delta adds present member ${m}`, u);
          set.members.add(m);
        }
        return;
      }
      case "ip-set-remove":
        if (!ipSets.has(u.id)) violation(`remove of unknown IP set ${u.id}`, u);
        for (const o of rulesOwners()) {
          for (const r of [...o.inbound, ...o.outbound]) {
            if (ruleSets(r).includes(u.id)) violation(`IP set ${u.id} removed while ${o.id} uses it`, u);
          }
        }
        ipSets.delete(u.id);
        return;
      case "active-policy-update":
        checkRules(u);
        policies.set(u.id, u);
        return;
      case "active-policy-remove":
        if (!policies.has(u.id)) violation(`remove of unknown policy ${u.id}`, u);
        for (const e of endpoints()) {
          if (endpointPolicyIds(e).includes(u.id))
            violation(`policy ${u.id} removed while ${e.id} uses it`, u);
        }
        policies.delete(u.id);
        return;
      case "active-profile-update":
        checkRules(u);
        profiles.set(u.id, u);
        return;
      case "active-profile-remove":
        if (!profiles.has(u.id)) violation(`remove of unknown profile ${u.id}`, u);
        for (const e of endpoints()) {
          if (e.profileIds.includes(u.id)) violation(`profile ${u.id} removed while ${e.id} uses it`, u);
        }
        profiles.delete(u.id);
        return;
      case "workload-endpoint-update":
        checkEndpoint(u);
        wep.set(u.id, u);
        return;
      case "workload-endpoint-remove":
        if (!wep.delete(u.id)) violation(`remove of unknown workload endpoint ${u.id}`, u);
        return;
      case "host-endpoint-update":
        checkEndpoint(u);
        hep.set(u.id, u);
        return;
      case "host-endpoint-remove":
        if (!hep.delete(u.id)) violation(`remove of unknown host endpoint ${u.id}`, u);
        return;
      case "in-sync":
        if (inSync) violation("in-sync sent twice", u);
        inSync = true;
        return;
    }
  };

  return {
    ipSets,
    policies,
    profiles,
    workloadEndpoints: wep,
    hostEndpoints: hep,
    get inSync() {
      return inSync;
    },
    apply(updates) {
      for (const u of updates) applyOne(u);
    },
    snapshot() {
      return {
        ipSets: Object.fromEntries(
          [...ipSets.entries()]
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([id, s]) => [id, { type: s.type, members: [...s.members].sort() }]),
        ),
        policies: sortedRecord(policies),
        profiles: sortedRecord(profiles),
        workloadEndpoints: sortedRecord(wep),
        hostEndpoints: sortedRecord(hep),
      };
    },
  };
}
