import type {
  EntityRule,
  GlobalNetworkPolicy,
  PolicyType,
  Port,
  ProtocolName,
  Rule,
  Tier,
} from "@margay/api";
import { isPolicyError, PolicyError, PolicyErrorCode } from "../errors.js";
import { cidrOrThrow } from "../model/net.js";
import {
  ADMIN_NETWORK_POLICY_PREFIX,
  ADMIN_NETWORK_POLICY_TIER,
  ADMIN_NETWORK_POLICY_TIER_ORDER,
  BASELINE_ADMIN_NETWORK_POLICY_ORDER,
  BASELINE_ADMIN_NETWORK_POLICY_PREFIX,
  BASELINE_ADMIN_NETWORK_POLICY_TIER,
  BASELINE_ADMIN_NETWORK_POLICY_TIER_ORDER,
  DEFAULT_TIER_NAME,
  DEFAULT_TIER_ORDER,
  LABEL_ORCHESTRATOR,
  MARGAY_API_VERSION,
  ORCHESTRATOR_K8S,
} from "../model/constants.js";
import type { ConvertOptions } from "./convert-options.js";
import type {
  K8sAdminNetworkPolicy,
  K8sAdminPolicyPeer,
  K8sAdminPolicyPort,
  K8sAdminPolicyRule,
  K8sAdminPolicySubject,
  K8sBaselineAdminNetworkPolicy,
} from "./kubernetes-types.js";
import { labelSelectorToCalico } from "./label-selector.js";

const K8S_PODS = `${LABEL_ORCHESTRATOR} == '${ORCHESTRATOR_K8S}'`;

function subjectSelectors(
  s: K8sAdminPolicySubject,
  path: string,
): { selector: string; namespaceSelector: string } {
  if (s.namespaces !== undefined)
    return { selector: K8S_PODS, namespaceSelector: labelSelectorToCalico(s.namespaces, "namespace") };
  if (s.pods !== undefined) {
    return {
      selector: labelSelectorToCalico(s.pods.podSelector, "pod"),
      namespaceSelector: labelSelectorToCalico(s.pods.namespaceSelector, "namespace"),
    };
  }
  throw new PolicyError(PolicyErrorCode.InvalidInput, "subject needs namespaces or pods", { path, value: s });
}

function peerFields(peer: K8sAdminPolicyPeer, path: string): EntityRule {
  if (peer.namespaces !== undefined) {
    return { selector: K8S_PODS, namespaceSelector: labelSelectorToCalico(peer.namespaces, "namespace") };
  }
  if (peer.pods !== undefined) {
    return {
      selector: labelSelectorToCalico(peer.pods.podSelector, "pod"),
      namespaceSelector: labelSelectorToCalico(peer.pods.namespaceSelector, "namespace"),
    };
  }
  if (peer.networks !== undefined)
    return { nets: peer.networks.map((n, i) => cidrOrThrow(n, `${path}.networks[${i}]`).text) };
  if (peer.nodes !== undefined) {
    throw new PolicyError(PolicyErrorCode.Unsupported, "nodes peers are not supported", {
      path: `${path}.nodes`,
      value: peer,
    });
  }
  throw new PolicyError(PolicyErrorCode.InvalidInput, "peer needs namespaces, pods or networks", {
    path,
    value: peer,
  });
}

const NAMED_PORT_PROTOCOLS = ["SCTP", "TCP", "UDP"] as const;

/** Ports grouped by protocol; `undefined` for "any protocol, any port". Named ports apply to every protocol. */
function protocolPorts(
  ports: readonly K8sAdminPolicyPort[] | undefined,
  path: string,
): Map<ProtocolName, Port[]> | undefined {
  if (ports === undefined || ports.length === 0) return undefined;
  const out = new Map<ProtocolName, Port[]>();
  const add = (proto: ProtocolName, spec: Port) => {
    let list = out.get(proto);
    if (list === undefined) out.set(proto, (list = []));
    list.push(spec);
  };
  const valid = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  for (const [i, p] of ports.entries()) {
    if (p.portNumber !== undefined) {
      if (!valid(p.portNumber.port)) {
        throw new PolicyError(PolicyErrorCode.InvalidInput, "port must be 1–65535", {
          path: `${path}[${i}]`,
          value: p,
        });
      }
      add(p.portNumber.protocol ?? "TCP", p.portNumber.port);
    } else if (p.portRange !== undefined) {
      if (!valid(p.portRange.start) || !valid(p.portRange.end) || p.portRange.end < p.portRange.start) {
        throw new PolicyError(
          PolicyErrorCode.InvalidInput,
          "port range must be 1–65535 with end not below start",
          {
            path: `${path}[${i}]`,
            value: p,
          },
        );
      }
      add(p.portRange.protocol ?? "TCP", `${p.portRange.start}:${p.portRange.end}`);
    } else if (p.namedPort !== undefined) {
      for (const proto of NAMED_PORT_PROTOCOLS) add(proto, p.namedPort);
    } else
      throw new PolicyError(PolicyErrorCode.InvalidInput, "port needs portNumber, portRange or namedPort", {
        path: `${path}[${i}]`,
      });
  }
  return out;
}

function convertRule(r: K8sAdminPolicyRule, ingress: boolean, path: string): Rule[] {
  const peers = (ingress ? r.from : r.to) ?? [];
  if (peers.length === 0) {
    throw new PolicyError(
      PolicyErrorCode.InvalidInput,
      `rule needs at least one peer in ${ingress ? "from" : "to"}`,
      { path },
    );
  }
  const byProto = protocolPorts(r.ports, `${path}.ports`);
  const protos: (ProtocolName | "")[] = byProto === undefined ? [""] : [...byProto.keys()].sort();
  const out: Rule[] = [];
  for (const proto of protos) {
    const ports = proto === "" ? undefined : byProto?.get(proto);
    for (const [i, peer] of peers.entries()) {
      const fields = peerFields(peer, `${path}.${ingress ? "from" : "to"}[${i}]`);
      const portField: EntityRule = ports === undefined ? {} : { ports };
      out.push({
        action: r.action,
        ...(proto === "" ? {} : { protocol: proto }),
        ...(ingress
          ? { source: fields, destination: portField }
          : { destination: { ...fields, ...portField } }),
      });
    }
  }
  return out;
}

/**
 * Converts one rule. One that cannot be converted must not open traffic, nor let traffic skip a Deny that
 * an intact policy would have applied: as in Calico, a failed Allow is dropped and a failed Deny or Pass
 * becomes a Deny of everything.
 */
function convertOrFailClosed(
  r: K8sAdminPolicyRule,
  ingress: boolean,
  path: string,
  options: ConvertOptions,
): Rule[] {
  try {
    return convertRule(r, ingress, path);
  } catch (e) {
    if (!isPolicyError(e)) throw e;
    options.onInvalidRule?.(e);
    return r.action === "Allow" ? [] : [{ action: "Deny" }];
  }
}

function convert(
  kind: "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy",
  name: string,
  spec: K8sBaselineAdminNetworkPolicy["spec"],
  tier: string,
  order: number,
  options: ConvertOptions,
): GlobalNetworkPolicy {
  const path = `${kind}/${name}`;
  const { selector, namespaceSelector } = subjectSelectors(spec.subject, `${path} spec.subject`);
  const ingress = (spec.ingress ?? []).flatMap((r, i) =>
    convertOrFailClosed(r, true, `${path} spec.ingress[${i}]`, options),
  );
  const egress = (spec.egress ?? []).flatMap((r, i) =>
    convertOrFailClosed(r, false, `${path} spec.egress[${i}]`, options),
  );
  // The tiers default to Pass, so a direction without rules needs no policy type (as in Calico).
  const types: PolicyType[] = [];
  if (ingress.length > 0) types.push("Ingress");
  if (egress.length > 0) types.push("Egress");
  return {
    apiVersion: MARGAY_API_VERSION,
    kind: "GlobalNetworkPolicy",
    metadata: {
      name: `${kind === "AdminNetworkPolicy" ? ADMIN_NETWORK_POLICY_PREFIX : BASELINE_ADMIN_NETWORK_POLICY_PREFIX}${name}`,
    },
    spec: { tier, order, selector, namespaceSelector, types, ingress, egress },
  };
}

/**
 * Converts an AdminNetworkPolicy (`policy.networking.k8s.io/v1alpha1`) as Calico does: a
 * GlobalNetworkPolicy `kanp.adminnetworkpolicy.<name>` in tier `adminnetworkpolicy` (order 1000, default
 * action Pass, before the default tier) with `order = priority`; each rule becomes one rule per protocol
 * and peer with the same action (Allow, Deny or Pass). A named port is matched for TCP, UDP and SCTP.
 *
 * A rule that cannot be converted — a `nodes` peer (`unsupported`), a malformed CIDR or port range
 * (`invalid-input`) — is reported through {@link ConvertOptions.onInvalidRule} and fails closed: an Allow
 * rule is dropped, a Deny or Pass rule becomes a Deny of everything.
 *
 * @throws {@link PolicyError} `invalid-input` for a priority outside 0–1000 or a subject without
 *   namespaces or pods (the policy's targets are unknown).
 */
export function convertAdminNetworkPolicy(
  anp: K8sAdminNetworkPolicy,
  options: ConvertOptions = {},
): GlobalNetworkPolicy {
  const p = anp.spec.priority;
  if (!Number.isInteger(p) || p < 0 || p > 1000) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, "priority must be an integer 0–1000", {
      path: `AdminNetworkPolicy/${anp.metadata.name} spec.priority`,
      value: p,
    });
  }
  return convert("AdminNetworkPolicy", anp.metadata.name, anp.spec, ADMIN_NETWORK_POLICY_TIER, p, options);
}

/**
 * Converts the BaselineAdminNetworkPolicy as Calico does: a GlobalNetworkPolicy
 * `kbanp.baselineadminnetworkpolicy.<name>` with order 1000 in tier `baselineadminnetworkpolicy`
 * (order 10,000,000, default action Pass, after the default tier). Its actions are Allow and Deny; a rule
 * that cannot be converted fails closed as in {@link convertAdminNetworkPolicy}.
 *
 * @throws {@link PolicyError} `invalid-input` for a Pass action (the API forbids it) or a subject without
 *   namespaces or pods.
 */
export function convertBaselineAdminNetworkPolicy(
  banp: K8sBaselineAdminNetworkPolicy,
  options: ConvertOptions = {},
): GlobalNetworkPolicy {
  const path = `BaselineAdminNetworkPolicy/${banp.metadata.name}`;
  for (const [dir, rules] of [
    ["ingress", banp.spec.ingress],
    ["egress", banp.spec.egress],
  ] as const) {
    for (const [i, r] of (rules ?? []).entries()) {
      if (r.action === "Pass") {
        throw new PolicyError(PolicyErrorCode.InvalidInput, "BaselineAdminNetworkPolicy rules cannot Pass", {
          path: `${path} spec.${dir}[${i}].action`,
        });
      }
    }
  }
  return convert(
    "BaselineAdminNetworkPolicy",
    banp.metadata.name,
    banp.spec,
    BASELINE_ADMIN_NETWORK_POLICY_TIER,
    BASELINE_ADMIN_NETWORK_POLICY_ORDER,
    options,
  );
}

/**
 * The three tiers Kubernetes policies live in, with Calico's fixed orders and default actions:
 * `adminnetworkpolicy` (1000, Pass), `default` (1,000,000, Deny), `baselineadminnetworkpolicy`
 * (10,000,000, Pass). The calculation graph assumes these when they are absent.
 */
export function kubernetesTiers(): Tier[] {
  const tier = (name: string, order: number, defaultAction: "Deny" | "Pass"): Tier => ({
    apiVersion: MARGAY_API_VERSION,
    kind: "Tier",
    metadata: { name },
    spec: { order, defaultAction },
  });
  return [
    tier(ADMIN_NETWORK_POLICY_TIER, ADMIN_NETWORK_POLICY_TIER_ORDER, "Pass"),
    tier(DEFAULT_TIER_NAME, DEFAULT_TIER_ORDER, "Deny"),
    tier(BASELINE_ADMIN_NETWORK_POLICY_TIER, BASELINE_ADMIN_NETWORK_POLICY_TIER_ORDER, "Pass"),
  ];
}
