import type {
  ActivePolicyUpdate,
  ActiveProfileUpdate,
  FailsafePort,
  HostEndpointUpdate,
  IpSetType,
  PolicyUpdate,
  PortRange,
  RenderedRule,
  WorkloadEndpointUpdate,
} from "@margay/dataplane-contract";
import { cidrOrThrow } from "./net.js";
import { DataplaneError, DataplaneErrorCode } from "./errors.js";
import { isValidInterfaceName } from "@margay/api";

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

const ACTIONS: ReadonlySet<string> = new Set(["allow", "deny", "log", "pass"]);
const isInt = (v: unknown, min: number, max: number) =>
  Number.isInteger(v) && (v as number) >= min && (v as number) <= max;

function checkNets(list: unknown, field: string, id: string): void {
  if (!Array.isArray(list)) throw invalid(`${field} must be a list`, { id, field });
  for (const n of list) {
    if (typeof n !== "string") throw invalid(`${field} must hold CIDRs`, { id, field });
    cidrOrThrow(n, "mask");
  }
}

function checkPorts(list: unknown, field: string, id: string): void {
  if (!Array.isArray(list)) throw invalid(`${field} must be a list`, { id, field });
  for (const p of list as PortRange[]) {
    if (!isInt(p?.first, 0, 65535) || !isInt(p?.last, p.first, 65535))
      throw invalid("invalid port range", { id, field });
  }
}

/** Protocols whose headers carry ports (TCP, UDP, SCTP, UDPLite): Calico's `SupportsPorts`. */
const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 132, 136]);

/**
 * Calico's rule validation: port matches (numeric, named, negated) need a protocol that has ports, and
 * ICMP matches need ICMP (IPv4) or ICMPv6 consistent with `ipVersion`. Without it a `notPorts` or
 * `notICMP` rule has no one right rendering (does "not port 80" match ICMP?), so the batch is refused
 * rather than rendered with a guess.
 */
function checkProtocolFields(r: RenderedRule, id: string): void {
  const portFields = [
    "srcPorts",
    "notSrcPorts",
    "dstPorts",
    "notDstPorts",
    "srcNamedPortIpSetIds",
    "notSrcNamedPortIpSetIds",
    "dstNamedPortIpSetIds",
    "notDstNamedPortIpSetIds",
  ] as const;
  const used = portFields.filter((f) => Array.isArray(r[f]) && r[f].length > 0);
  if (used.length > 0 && (r.protocol === undefined || !PORT_PROTOCOLS.has(r.protocol))) {
    throw invalid("ports need protocol TCP, UDP, SCTP or UDPLite", {
      id,
      ruleId: r.ruleId,
      fields: used,
      protocol: r.protocol,
    });
  }
  for (const f of ["icmp", "notIcmp"] as const) {
    if (r[f] === undefined) continue;
    if (r.protocol !== 1 && r.protocol !== 58) {
      throw invalid("icmp matches need protocol ICMP or ICMPv6", {
        id,
        ruleId: r.ruleId,
        field: f,
        protocol: r.protocol,
      });
    }
    if (r.ipVersion !== undefined && r.ipVersion !== (r.protocol === 1 ? 4 : 6)) {
      throw invalid("icmp protocol does not match ipVersion", {
        id,
        ruleId: r.ruleId,
        field: f,
        protocol: r.protocol,
        ipVersion: r.ipVersion,
      });
    }
  }
}

/**
 * Every rule field that reaches nft text is checked here (CIDRs, numbers in range, known actions), so a
 * malformed rule is an `invalid-update` for its batch rather than text spliced into a transaction.
 */
function checkRules(rules: readonly RenderedRule[], id: string): void {
  for (const r of rules) {
    if (!ACTIONS.has(r?.action)) throw invalid("unknown rule action", { id, action: r?.action });
    if (r.ipVersion !== undefined && r.ipVersion !== 4 && r.ipVersion !== 6)
      throw invalid("bad ipVersion", { id });
    for (const f of ["protocol", "notProtocol"] as const) {
      if (r[f] !== undefined && !isInt(r[f], 0, 255)) throw invalid(`bad ${f}`, { id, [f]: r[f] });
    }
    for (const f of ["icmp", "notIcmp"] as const) {
      const m = r[f];
      if (m !== undefined && (!isInt(m.type, 0, 255) || (m.code !== undefined && !isInt(m.code, 0, 255)))) {
        throw invalid(`bad ${f}`, { id });
      }
    }
    checkProtocolFields(r, id);
    for (const f of ["srcNets", "notSrcNets", "dstNets", "notDstNets"] as const) checkNets(r[f], f, id);
    for (const f of ["srcPorts", "notSrcPorts", "dstPorts", "notDstPorts"] as const) checkPorts(r[f], f, id);
    for (const f of [
      "srcIpSetIds",
      "notSrcIpSetIds",
      "srcNamedPortIpSetIds",
      "notSrcNamedPortIpSetIds",
      "dstIpSetIds",
      "notDstIpSetIds",
      "dstNamedPortIpSetIds",
      "notDstNamedPortIpSetIds",
    ] as const) {
      requireList({ kind: "rule" }, f, r[f]);
    }
  }
}

function checkFailsafe(list: readonly FailsafePort[], id: string): void {
  for (const f of list) {
    if (!["tcp", "udp", "sctp"].includes(f?.protocol) || !isInt(f.port, 0, 65535)) {
      throw invalid("invalid failsafe port", { id });
    }
    if (f.net !== undefined) cidrOrThrow(f.net, "mask");
  }
}

/** IP set members must parse for their type (they are written into nft elements). */
function checkMembers(type: IpSetType, members: readonly string[], id: string): void {
  for (const m of members) {
    if (type === "ip-and-port") {
      const match = /^(.+),(tcp|udp|sctp):(\d{1,5})$/.exec(m);
      if (match === null || !isInt(Number(match[3]), 0, 65535))
        throw invalid("invalid ip-and-port member", { id, m });
      cidrOrThrow(match[1]!);
    } else cidrOrThrow(m, "mask");
  }
}

/**
 * The IP sets that exist at some point of a batch being validated, with their member syntax: what the
 * state holds, as the batch's earlier updates change it.
 */
export interface BatchIpSets {
  /** The member type of set `id`, or `undefined` if no such set exists at this point. */
  typeOf(id: string): IpSetType | undefined;
  /** Records that set `id` now exists with member type `type` (`undefined`: removed). */
  set(id: string, type: IpSetType | undefined): void;
}

/**
 * A {@link BatchIpSets} over `held` (the state's sets): the batch's own changes are kept beside it, so
 * validating a batch costs what the batch holds, not a copy of every set the state holds.
 */
export function batchIpSets(held: ReadonlyMap<string, HeldIpSet>): BatchIpSets {
  const own = new Map<string, IpSetType | undefined>();
  return {
    typeOf: (id) => (own.has(id) ? own.get(id) : held.get(id)?.type),
    set: (id, type) => {
      own.set(id, type);
    },
  };
}

/**
 * Validation of a policy update; `sets` tracks the IP sets that exist at this point of the batch (and
 * their member syntax) so a delta for an unknown set is rejected before anything is applied.
 */
export function validatePolicyUpdate(u: PolicyUpdate, sets: BatchIpSets): void {
  switch (u.kind) {
    case "ip-set-update":
      requireId(u);
      if (!["ip", "ip-and-port", "net"].includes(u.type)) throw invalid("unknown IP set type", { id: u.id });
      requireList(u, "members", u.members);
      checkMembers(u.type, u.members, u.id);
      sets.set(u.id, u.type);
      return;
    case "ip-set-delta-update":
      requireId(u);
      requireList(u, "added", u.added);
      requireList(u, "removed", u.removed);
      {
        const type = sets.typeOf(u.id);
        if (type === undefined)
          throw invalid("delta for an IP set that was never sent in full", { id: u.id });
        checkMembers(type, u.added, u.id);
      }
      return;
    case "ip-set-remove":
      sets.set(requireId(u), undefined);
      return;
    case "active-policy-update":
    case "active-profile-update":
      requireId(u);
      if (!Array.isArray(u.inbound) || !Array.isArray(u.outbound)) {
        throw invalid("rules must be lists", { id: u.id });
      }
      checkRules(u.inbound, u.id);
      checkRules(u.outbound, u.id);
      return;
    case "workload-endpoint-update":
      requireId(u);
      if (!isValidInterfaceName(u.ifname))
        throw invalid("invalid endpoint interface name", { id: u.id, ifname: u.ifname });
      requireList(u, "ipNetworks", u.ipNetworks);
      checkNets(u.ipNetworks, "ipNetworks", u.id);
      return;
    case "host-endpoint-update":
      requireId(u);
      if (u.ifname !== "*" && !isValidInterfaceName(u.ifname)) {
        throw invalid("invalid host endpoint interface name", { id: u.id, ifname: u.ifname });
      }
      checkFailsafe(u.failsafe?.inbound ?? [], u.id);
      checkFailsafe(u.failsafe?.outbound ?? [], u.id);
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
