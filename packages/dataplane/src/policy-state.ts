import type {
  ActivePolicyUpdate,
  ActiveProfileUpdate,
  HostEndpointUpdate,
  IpSetType,
  PolicyUpdate,
  WorkloadEndpointUpdate,
} from "@margay/policy";
import { DataplaneError, DataplaneErrorCode } from "./errors.js";
import { isValidIfName } from "./kernel/names.js";

/** An IP set as the driver holds it. */
export interface HeldIpSet {
  /** Member syntax. */
  readonly type: IpSetType;
  /** Members. */
  readonly members: Set<string>;
  /** Bumped on every membership change, so renderers can cache per version. */
  version: number;
}

/** The policy half of the model: last value of every keyed update. */
export interface PolicyState {
  /** IP sets by id. */
  readonly ipSets: Map<string, HeldIpSet>;
  /** Active policies by id. */
  readonly policies: Map<string, ActivePolicyUpdate>;
  /** Active profiles by id. */
  readonly profiles: Map<string, ActiveProfileUpdate>;
  /** Local workload endpoints by id. */
  readonly workloads: Map<string, WorkloadEndpointUpdate>;
  /** Local host endpoints by id. */
  readonly hosts: Map<string, HostEndpointUpdate>;
  /**
   * Bumped when a policy or profile id appears or disappears (not when one is updated): endpoint chains
   * depend only on which ids exist, so they are re-rendered only when this changes.
   */
  refVersion: number;
}

/** An empty {@link PolicyState}. */
export function createPolicyState(): PolicyState {
  return {
    ipSets: new Map(),
    policies: new Map(),
    profiles: new Map(),
    workloads: new Map(),
    hosts: new Map(),
    refVersion: 0,
  };
}

function invalid(message: string, details: Record<string, unknown>): DataplaneError {
  return new DataplaneError(DataplaneErrorCode.InvalidUpdate, message, { details });
}

function requireId(u: { readonly kind: string; readonly id?: unknown }): string {
  if (typeof u.id !== "string" || u.id.length === 0) throw invalid("update needs an id", { kind: u.kind });
  return u.id;
}

function requireList(u: { readonly kind: string }, name: string, v: unknown): void {
  if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
    throw invalid(`${name} must be a list of strings`, { kind: u.kind, field: name });
  }
}

/**
 * Structural validation of a policy update; `known` tracks IP set ids that exist at this point of the
 * batch so a delta for an unknown set is rejected before anything is applied.
 */
export function validatePolicyUpdate(u: PolicyUpdate, known: Set<string>): void {
  switch (u.kind) {
    case "ip-set-update":
      requireId(u);
      if (!["ip", "ip-and-port", "net"].includes(u.type)) throw invalid("unknown IP set type", { id: u.id });
      requireList(u, "members", u.members);
      known.add(u.id);
      return;
    case "ip-set-delta-update":
      requireId(u);
      requireList(u, "added", u.added);
      requireList(u, "removed", u.removed);
      if (!known.has(u.id)) throw invalid("delta for an IP set that was never sent in full", { id: u.id });
      return;
    case "ip-set-remove":
      known.delete(requireId(u));
      return;
    case "active-policy-update":
    case "active-profile-update":
      requireId(u);
      if (!Array.isArray(u.inbound) || !Array.isArray(u.outbound))
        throw invalid("rules must be lists", { id: u.id });
      return;
    case "workload-endpoint-update":
      requireId(u);
      if (!isValidIfName(u.ifname))
        throw invalid("invalid endpoint interface name", { id: u.id, ifname: u.ifname });
      requireList(u, "ipNetworks", u.ipNetworks);
      return;
    case "host-endpoint-update":
      requireId(u);
      if (u.ifname !== "*" && !isValidIfName(u.ifname)) {
        throw invalid("invalid host endpoint interface name", { id: u.id, ifname: u.ifname });
      }
      return;
    case "active-policy-remove":
    case "active-profile-remove":
    case "workload-endpoint-remove":
    case "host-endpoint-remove":
      requireId(u);
      return;
    case "in-sync":
      return;
  }
}

/** Applies one validated policy update. */
export function applyPolicyUpdate(s: PolicyState, u: PolicyUpdate): void {
  switch (u.kind) {
    case "ip-set-update":
      s.ipSets.set(u.id, { type: u.type, members: new Set(u.members), version: 0 });
      return;
    case "ip-set-delta-update": {
      const set = s.ipSets.get(u.id);
      if (set === undefined) return;
      for (const m of u.removed) set.members.delete(m);
      for (const m of u.added) set.members.add(m);
      set.version++;
      return;
    }
    case "ip-set-remove":
      s.ipSets.delete(u.id);
      return;
    case "active-policy-update":
      if (!s.policies.has(u.id)) s.refVersion++;
      s.policies.set(u.id, u);
      return;
    case "active-policy-remove":
      if (s.policies.delete(u.id)) s.refVersion++;
      return;
    case "active-profile-update":
      if (!s.profiles.has(u.id)) s.refVersion++;
      s.profiles.set(u.id, u);
      return;
    case "active-profile-remove":
      if (s.profiles.delete(u.id)) s.refVersion++;
      return;
    case "workload-endpoint-update":
      s.workloads.set(u.id, u);
      return;
    case "workload-endpoint-remove":
      s.workloads.delete(u.id);
      return;
    case "host-endpoint-update":
      s.hosts.set(u.id, u);
      return;
    case "host-endpoint-remove":
      s.hosts.delete(u.id);
      return;
    case "in-sync":
      return;
  }
}
