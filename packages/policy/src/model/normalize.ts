import type { IcmpMatch, PolicyFlags, PortRange, RenderedRuleAction } from "@margay/dataplane-contract";
import { isPolicyError, PolicyError, PolicyErrorCode } from "../errors.js";
import { cidrOrThrow } from "./net.js";
import { DEFAULT_TIER_NAME, LABEL_NAMESPACE, LABEL_SERVICE_ACCOUNT } from "./constants.js";
import { parsePorts } from "./ports.js";
import { PORT_PROTOCOLS, protocolNumber } from "./protocol.js";
import type {
  EntityRule,
  GlobalNetworkPolicy,
  Selector,
  GlobalNetworkSet,
  HostEndpoint,
  ICMPFields,
  IpCidr,
  NetworkPolicy,
  NetworkSet,
  Profile,
  Rule,
  Tier,
  WorkloadEndpoint,
} from "@margay/api";
import { resourceKeyString } from "./resources.js";
import { cachedSelector, entityRuleSelectorText, policySelectorText } from "./selectors.js";

/** One side of a normalized rule: CIDRs parsed, selectors combined and parsed, ports split. */
export interface NormalizedEntity {
  readonly nets: readonly IpCidr[];
  readonly notNets: readonly IpCidr[];
  /** Combined selector (selector ∧ namespace ∧ service account), if any. */
  readonly selector?: Selector | undefined;
  readonly notSelector?: Selector | undefined;
  readonly ports: readonly PortRange[];
  readonly namedPorts: readonly string[];
  readonly notPorts: readonly PortRange[];
  readonly notNamedPorts: readonly string[];
}

/** A rule ready for matching or rendering. */
export interface NormalizedRule {
  readonly action: RenderedRuleAction;
  readonly index: number;
  readonly ipVersion?: 4 | 6 | undefined;
  readonly protocol?: number | undefined;
  readonly notProtocol?: number | undefined;
  readonly icmp?: IcmpMatch | undefined;
  readonly notIcmp?: IcmpMatch | undefined;
  readonly src: NormalizedEntity;
  readonly dst: NormalizedEntity;
  /**
   * Set when the rule could not be read: it is then a Deny of everything, so a broken rule fails closed.
   */
  readonly invalid?: string | undefined;
}

/** A policy ready for the calculation graph and the evaluator. */
export interface NormalizedPolicy {
  /** Resource key string (`GlobalNetworkPolicy/name`, `NetworkPolicy/ns/name`). */
  readonly key: string;
  /** `<tier>/<name>` or `<tier>/<namespace>/<name>`. */
  readonly id: string;
  readonly tier: string;
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly order?: number | undefined;
  readonly selector: Selector;
  readonly ingress: boolean;
  readonly egress: boolean;
  readonly inbound: readonly NormalizedRule[];
  readonly outbound: readonly NormalizedRule[];
  readonly flags: PolicyFlags;
}

/** A tier's ordering and default action. */
export interface NormalizedTier {
  readonly name: string;
  readonly order?: number | undefined;
  readonly defaultAction: "deny" | "pass";
}

/** A profile: rules plus labels its endpoints inherit. */
export interface NormalizedProfile {
  readonly id: string;
  readonly inbound: readonly NormalizedRule[];
  readonly outbound: readonly NormalizedRule[];
  readonly labels: Readonly<Record<string, string>>;
}

/** A named port of an endpoint with its protocol number. */
export interface NormalizedPort {
  readonly name: string;
  readonly protocol: number;
  readonly port: number;
}

/** Anything labelled that selectors match: an endpoint or a network set. */
export interface NormalizedItem {
  readonly key: string;
  readonly type: "workload" | "host" | "network-set";
  /** Own labels, including the implicit namespace / service-account labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** Profile ids the item inherits labels from (in order; earlier wins). */
  readonly parents: readonly string[];
  /** Addresses (endpoints, host routes) or networks (network sets). */
  readonly nets: readonly IpCidr[];
  readonly ports: readonly NormalizedPort[];
}

/** An endpoint: a labelled item plus what the dataplane needs. */
export interface NormalizedEndpoint extends NormalizedItem {
  readonly type: "workload" | "host";
  /** `<namespace>/<name>` for a workload endpoint, the name for a host endpoint. */
  readonly id: string;
  readonly node?: string | undefined;
  readonly ifname: string;
  readonly mac?: string | undefined;
  readonly profiles: readonly string[];
}

function nets(list: readonly string[] | undefined, path: string): IpCidr[] {
  return (list ?? []).map((n, i) => cidrOrThrow(n, `${path}[${i}]`));
}

function icmp(f: ICMPFields | undefined, path: string): IcmpMatch | undefined {
  if (f === undefined) return undefined;
  if (f.type === undefined) {
    if (f.code !== undefined) {
      throw new PolicyError(PolicyErrorCode.InvalidInput, "ICMP code without type", { path, value: f });
    }
    return undefined;
  }
  if (
    !Number.isInteger(f.type) ||
    f.type < 0 ||
    f.type > 255 ||
    (f.code !== undefined && (!Number.isInteger(f.code) || f.code < 0 || f.code > 255))
  ) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, "invalid ICMP type/code", { path, value: f });
  }
  return f.code === undefined ? { type: f.type } : { type: f.type, code: f.code };
}

function entity(er: EntityRule | undefined, namespace: string | undefined, path: string): NormalizedEntity {
  const e = er ?? {};
  const selText = entityRuleSelectorText(e, namespace, path);
  const ports = parsePorts(e.ports, `${path}.ports`);
  const notPorts = parsePorts(e.notPorts, `${path}.notPorts`);
  return {
    nets: nets(e.nets, `${path}.nets`),
    notNets: nets(e.notNets, `${path}.notNets`),
    selector: selText === "" ? undefined : cachedSelector(selText, `${path}.selector`),
    notSelector:
      e.notSelector === undefined || e.notSelector === ""
        ? undefined
        : cachedSelector(e.notSelector, `${path}.notSelector`),
    ports: ports.ranges,
    namedPorts: ports.names,
    notPorts: notPorts.ranges,
    notNamedPorts: notPorts.names,
  };
}

const NO_ENTITY: NormalizedEntity = {
  nets: [],
  notNets: [],
  ports: [],
  namedPorts: [],
  notPorts: [],
  notNamedPorts: [],
};

const ACTIONS: Readonly<Record<string, RenderedRuleAction>> = {
  Allow: "allow",
  Deny: "deny",
  Log: "log",
  Pass: "pass",
};

/**
 * Normalizes one rule. A rule that cannot be read becomes a Deny of everything carrying the reason in
 * `invalid` (fail closed), rather than an error that would drop the whole policy.
 */
export function normalizeRule(
  rule: Rule,
  index: number,
  namespace: string | undefined,
  path: string,
): NormalizedRule {
  try {
    const action = ACTIONS[rule.action];
    if (action === undefined) {
      throw new PolicyError(PolicyErrorCode.InvalidInput, `invalid action ${JSON.stringify(rule.action)}`, {
        path: `${path}.action`,
        value: rule.action,
      });
    }
    for (const [side, e] of [
      ["source", rule.source],
      ["destination", rule.destination],
    ] as const) {
      if (e?.services !== undefined) {
        throw new PolicyError(PolicyErrorCode.Unsupported, "service matches are not supported yet", {
          path: `${path}.${side}.services`,
        });
      }
    }
    if (rule.http !== undefined) {
      throw new PolicyError(
        PolicyErrorCode.Unsupported,
        "HTTP matches need an L7 proxy and are not supported",
        {
          path: `${path}.http`,
        },
      );
    }
    const protocol =
      rule.protocol === undefined ? undefined : protocolNumber(rule.protocol, `${path}.protocol`);
    const notProtocol =
      rule.notProtocol === undefined ? undefined : protocolNumber(rule.notProtocol, `${path}.notProtocol`);
    const src = entity(rule.source, namespace, `${path}.source`);
    const dst = entity(rule.destination, namespace, `${path}.destination`);
    const usesPorts = [src, dst].some(
      (e) => e.ports.length + e.namedPorts.length + e.notPorts.length + e.notNamedPorts.length > 0,
    );
    if (usesPorts && (protocol === undefined || !PORT_PROTOCOLS.has(protocol))) {
      throw new PolicyError(PolicyErrorCode.InvalidInput, "ports need protocol TCP, UDP, SCTP or UDPLite", {
        path: `${path}.protocol`,
        value: rule.protocol,
      });
    }
    const ic = icmp(rule.icmp, `${path}.icmp`);
    const notIc = icmp(rule.notICMP, `${path}.notICMP`);
    if ((ic !== undefined || notIc !== undefined) && protocol !== 1 && protocol !== 58) {
      throw new PolicyError(PolicyErrorCode.InvalidInput, "icmp needs protocol ICMP or ICMPv6", {
        path: `${path}.icmp`,
      });
    }
    if (rule.ipVersion !== undefined && rule.ipVersion !== 4 && rule.ipVersion !== 6) {
      throw new PolicyError(PolicyErrorCode.InvalidInput, "ipVersion must be 4 or 6", {
        path: `${path}.ipVersion`,
      });
    }
    return {
      action,
      index,
      ipVersion: rule.ipVersion,
      protocol,
      notProtocol,
      icmp: ic,
      notIcmp: notIc,
      src,
      dst,
    };
  } catch (e) {
    if (!isPolicyError(e)) throw e;
    return {
      action: "deny",
      index,
      src: NO_ENTITY,
      dst: NO_ENTITY,
      invalid: `${e.message} (${e.details.path ?? path})`,
    };
  }
}

function rules(
  list: readonly Rule[] | undefined,
  namespace: string | undefined,
  path: string,
): NormalizedRule[] {
  return (list ?? []).map((r, i) => normalizeRule(r, i, namespace, `${path}[${i}]`));
}

/** The policy id used on the update stream: `<tier>/<name>` or `<tier>/<namespace>/<name>`. */
export function policyId(tier: string, name: string, namespace?: string | undefined): string {
  return namespace === undefined || namespace === "" ? `${tier}/${name}` : `${tier}/${namespace}/${name}`;
}

/**
 * Normalizes a NetworkPolicy or GlobalNetworkPolicy.
 *
 * @throws {@link PolicyError} `invalid-input` when the policy's own selectors cannot be parsed (a policy
 *   whose targets are unknown cannot be applied at all).
 */
export function normalizePolicy(p: NetworkPolicy | GlobalNetworkPolicy): NormalizedPolicy {
  const namespace = p.kind === "NetworkPolicy" ? (p.metadata.namespace ?? "") : undefined;
  const key = resourceKeyString({ kind: p.kind, name: p.metadata.name, namespace });
  const spec = p.spec;
  const tier = spec.tier !== undefined && spec.tier !== "" ? spec.tier : DEFAULT_TIER_NAME;
  const selector = cachedSelector(policySelectorText(spec, namespace), `${key} spec.selector`);
  const hasIn = (spec.ingress?.length ?? 0) > 0;
  const hasEg = (spec.egress?.length ?? 0) > 0;
  const types = spec.types !== undefined && spec.types.length > 0 ? spec.types : undefined;
  const ingress = types === undefined ? hasIn || !hasEg : types.includes("Ingress");
  const egress = types === undefined ? hasEg : types.includes("Egress");
  const g = p.kind === "GlobalNetworkPolicy" ? p.spec : undefined;
  return {
    key,
    id: policyId(tier, p.metadata.name, namespace),
    tier,
    name: p.metadata.name,
    namespace,
    order: spec.order,
    selector,
    ingress,
    egress,
    inbound: ingress ? rules(spec.ingress, namespace, `${key} spec.ingress`) : [],
    outbound: egress ? rules(spec.egress, namespace, `${key} spec.egress`) : [],
    flags: {
      untracked: g?.doNotTrack === true,
      preDnat: g?.preDNAT === true,
      applyOnForward: g?.applyOnForward === true || g?.doNotTrack === true || g?.preDNAT === true,
    },
  };
}

/** Normalizes a tier (`defaultAction` defaults to Deny). */
export function normalizeTier(t: Tier): NormalizedTier {
  return {
    name: t.metadata.name,
    order: t.spec.order,
    defaultAction: t.spec.defaultAction === "Pass" ? "pass" : "deny",
  };
}

/** Normalizes a profile. */
export function normalizeProfile(p: Profile): NormalizedProfile {
  const key = `Profile/${p.metadata.name}`;
  return {
    id: p.metadata.name,
    inbound: rules(p.spec.ingress, undefined, `${key} spec.ingress`),
    outbound: rules(p.spec.egress, undefined, `${key} spec.egress`),
    labels: { ...(p.spec.labelsToApply ?? {}) },
  };
}

function ports(list: WorkloadEndpoint["spec"]["ports"], path: string): NormalizedPort[] {
  return (list ?? []).map((p, i) => ({
    name: p.name,
    protocol: protocolNumber(p.protocol, `${path}[${i}].protocol`),
    port: p.port,
  }));
}

/**
 * Normalizes a workload endpoint. The namespace label (and the service-account label, when the endpoint
 * names one) are added as Calico does, so namespaced selectors always see them.
 */
export function normalizeWorkloadEndpoint(w: WorkloadEndpoint): NormalizedEndpoint {
  const ns = w.metadata.namespace ?? "";
  const key = resourceKeyString({ kind: "WorkloadEndpoint", name: w.metadata.name, namespace: ns });
  const labels: Record<string, string> = { ...(w.metadata.labels ?? {}), [LABEL_NAMESPACE]: ns };
  if (
    w.spec.serviceAccountName !== undefined &&
    w.spec.serviceAccountName !== "" &&
    labels[LABEL_SERVICE_ACCOUNT] === undefined
  ) {
    labels[LABEL_SERVICE_ACCOUNT] = w.spec.serviceAccountName;
  }
  const profiles = [...(w.spec.profiles ?? [])];
  return {
    key,
    type: "workload",
    id: `${ns}/${w.metadata.name}`,
    labels,
    parents: profiles,
    profiles,
    nets: nets(w.spec.ipNetworks, `${key} spec.ipNetworks`),
    ports: ports(w.spec.ports, `${key} spec.ports`),
    node: w.spec.node,
    ifname: w.spec.interfaceName ?? "",
    mac: w.spec.mac,
  };
}

/** Normalizes a host endpoint (`interfaceName` absent means all interfaces: `*`). */
export function normalizeHostEndpoint(h: HostEndpoint): NormalizedEndpoint {
  const key = resourceKeyString({ kind: "HostEndpoint", name: h.metadata.name });
  const profiles = [...(h.spec.profiles ?? [])];
  return {
    key,
    type: "host",
    id: h.metadata.name,
    labels: { ...(h.metadata.labels ?? {}) },
    parents: profiles,
    profiles,
    nets: nets(h.spec.expectedIPs, `${key} spec.expectedIPs`),
    ports: ports(h.spec.ports, `${key} spec.ports`),
    node: h.spec.node,
    ifname: h.spec.interfaceName !== undefined && h.spec.interfaceName !== "" ? h.spec.interfaceName : "*",
  };
}

/**
 * Normalizes a network set. A namespaced set carries the namespace label and inherits its namespace's
 * labels (profile `kns.<namespace>`), as in Calico.
 */
export function normalizeNetworkSet(s: NetworkSet | GlobalNetworkSet): NormalizedItem {
  if (s.kind === "NetworkSet") {
    const ns = s.metadata.namespace ?? "";
    const key = resourceKeyString({ kind: "NetworkSet", name: s.metadata.name, namespace: ns });
    return {
      key,
      type: "network-set",
      labels: { ...(s.metadata.labels ?? {}), [LABEL_NAMESPACE]: ns },
      parents: [`kns.${ns}`],
      nets: nets(s.spec.nets, `${key} spec.nets`),
      ports: [],
    };
  }
  const key = resourceKeyString({ kind: "GlobalNetworkSet", name: s.metadata.name });
  return {
    key,
    type: "network-set",
    labels: { ...(s.metadata.labels ?? {}) },
    parents: [],
    nets: nets(s.spec.nets, `${key} spec.nets`),
    ports: [],
  };
}
