import type { EntityRule, NetworkPolicy, PolicyType, Port, ProtocolName, Rule } from "@margay/api";
import { isPolicyError, PolicyError, PolicyErrorCode } from "../errors.js";
import { cidrContainsCidr } from "@margay/api";
import { cidrOrThrow } from "../model/net.js";
import {
  DEFAULT_TIER_NAME,
  K8S_NETWORK_POLICY_ORDER,
  K8S_NETWORK_POLICY_PREFIX,
  MARGAY_API_VERSION,
} from "../model/constants.js";
import type { ConvertOptions } from "./convert-options.js";
import type { K8sNetworkPolicy, K8sNetworkPolicyPeer, K8sNetworkPolicyPort } from "./kubernetes-types.js";
import { labelSelectorToCalico } from "./label-selector.js";

/** A peer as entity-rule fields. */
type PeerFields = Pick<EntityRule, "selector" | "namespaceSelector" | "nets" | "notNets">;

function peerFields(peer: K8sNetworkPolicyPeer | undefined, path: string): PeerFields {
  if (peer === undefined) return {};
  if (peer.ipBlock !== undefined && peer.ipBlock !== null) {
    const b = peer.ipBlock;
    const cidr = cidrOrThrow(b.cidr, `${path}.ipBlock.cidr`);
    const except = (b.except ?? []).map((e, i) => {
      const c = cidrOrThrow(e, `${path}.ipBlock.except[${i}]`);
      // Kubernetes rejects an except outside the block; so do we, rather than guess.
      if (!cidrContainsCidr(cidr, c)) {
        throw new PolicyError(PolicyErrorCode.InvalidInput, `except ${e} is not inside ${b.cidr}`, {
          path: `${path}.ipBlock.except[${i}]`,
          value: e,
        });
      }
      return c.text;
    });
    return except.length > 0 ? { nets: [cidr.text], notNets: except } : { nets: [cidr.text] };
  }
  const selector = labelSelectorToCalico(peer.podSelector, "pod");
  const namespaceSelector = labelSelectorToCalico(peer.namespaceSelector, "namespace");
  return namespaceSelector === "" ? { selector } : { selector, namespaceSelector };
}

function portSpec(p: K8sNetworkPolicyPort, path: string): Port | undefined {
  if (p.port === undefined) return undefined;
  if (typeof p.port === "string" && !/^\d+$/.test(p.port)) {
    if (p.endPort !== undefined) {
      throw new PolicyError(PolicyErrorCode.InvalidInput, "endPort needs a numeric port", {
        path: `${path}.endPort`,
        value: p,
      });
    }
    return p.port;
  }
  const first = Number(p.port);
  const valid = (n: number) => Number.isInteger(n) && n >= 1 && n <= 65535;
  if (!valid(first)) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, "port must be 1–65535", {
      path: `${path}.port`,
      value: p.port,
    });
  }
  if (p.endPort === undefined) return first;
  if (!valid(p.endPort) || p.endPort < first) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, "endPort must be 1–65535 and not below port", {
      path: `${path}.endPort`,
      value: p,
    });
  }
  return `${first}:${p.endPort}`;
}

/**
 * Groups ports by protocol, Calico's way: no ports means any protocol and port; a protocol listed without
 * a port means every port of that protocol. A missing protocol is TCP, as the API server defaults it, so an
 * empty port entry means every TCP port (not any protocol).
 */
function protocolPorts(
  ports: readonly K8sNetworkPolicyPort[] | undefined,
  path: string,
): Map<ProtocolName | "", Port[] | undefined> {
  const out = new Map<ProtocolName | "", Port[] | undefined>();
  if (ports === undefined || ports.length === 0)
    return new Map<ProtocolName | "", Port[] | undefined>([["", undefined]]);
  for (const [i, p] of ports.entries()) {
    const proto = p.protocol ?? "TCP";
    const spec = portSpec(p, `${path}[${i}]`);
    // "Every port" of a protocol absorbs any single ports listed for it.
    if (spec === undefined) out.set(proto, undefined);
    else if (!out.has(proto)) out.set(proto, [spec]);
    else out.get(proto)?.push(spec);
  }
  return out;
}

function convertRules(
  peers: readonly K8sNetworkPolicyPeer[] | undefined,
  ports: readonly K8sNetworkPolicyPort[] | undefined,
  ingress: boolean,
  path: string,
): Rule[] {
  const peerList: (K8sNetworkPolicyPeer | undefined)[] =
    peers === undefined || peers.length === 0 ? [undefined] : [...peers];
  const byProto = protocolPorts(ports, `${path}.ports`);
  const rules: Rule[] = [];
  for (const proto of [...byProto.keys()].sort()) {
    const portList = byProto.get(proto);
    for (const [i, peer] of peerList.entries()) {
      const fields = peerFields(peer, `${path}.${ingress ? "from" : "to"}[${i}]`);
      const portsField: EntityRule = portList === undefined ? {} : { ports: portList };
      rules.push({
        action: "Allow",
        ...(proto === "" ? {} : { protocol: proto }),
        ...(ingress
          ? { source: fields, destination: portsField }
          : { destination: { ...fields, ...portsField } }),
      });
    }
  }
  return rules;
}

/** Converts one rule; a rule that cannot be converted is dropped (it only ever allowed) and reported. */
function convertOrDrop(
  peers: readonly K8sNetworkPolicyPeer[] | undefined,
  ports: readonly K8sNetworkPolicyPort[] | undefined,
  ingress: boolean,
  path: string,
  options: ConvertOptions,
): Rule[] {
  try {
    return convertRules(peers, ports, ingress, path);
  } catch (e) {
    if (!isPolicyError(e)) throw e;
    options.onInvalidRule?.(e);
    return [];
  }
}

/**
 * Converts a Kubernetes NetworkPolicy (`networking.k8s.io/v1`) into a Margay NetworkPolicy the way Calico
 * does: named `knp.default.<name>`, in the `default` tier with order 1000, selecting the namespace's pods
 * (`projectcalico.org/orchestrator == 'k8s'` plus the pod selector). Each rule becomes one Allow rule per
 * protocol and peer. `policyTypes` defaults as the API server does: Ingress, plus Egress when there are
 * egress rules; so does a port's protocol (TCP).
 *
 * A rule that cannot be converted (malformed CIDR, `except` outside its block, bad port range) is dropped
 * and reported through {@link ConvertOptions.onInvalidRule}: the policy still isolates its pods, it just
 * allows less — never more (Calico does the same).
 */
export function convertNetworkPolicy(np: K8sNetworkPolicy, options: ConvertOptions = {}): NetworkPolicy {
  const ns = np.metadata.namespace ?? "default";
  const path = `NetworkPolicy/${ns}/${np.metadata.name}`;
  const ingress = (np.spec.ingress ?? []).flatMap((r, i) =>
    convertOrDrop(r.from, r.ports, true, `${path} spec.ingress[${i}]`, options),
  );
  const egress = (np.spec.egress ?? []).flatMap((r, i) =>
    convertOrDrop(r.to, r.ports, false, `${path} spec.egress[${i}]`, options),
  );
  let types: PolicyType[];
  if (np.spec.policyTypes !== undefined && np.spec.policyTypes.length > 0) {
    types = (["Ingress", "Egress"] as const).filter((t) => np.spec.policyTypes!.includes(t));
  } else {
    types = (np.spec.egress?.length ?? 0) > 0 ? ["Ingress", "Egress"] : ["Ingress"];
  }
  return {
    apiVersion: MARGAY_API_VERSION,
    kind: "NetworkPolicy",
    metadata: { name: `${K8S_NETWORK_POLICY_PREFIX}${np.metadata.name}`, namespace: ns },
    spec: {
      tier: DEFAULT_TIER_NAME,
      order: K8S_NETWORK_POLICY_ORDER,
      selector: labelSelectorToCalico(np.spec.podSelector, "pod"),
      types,
      ingress,
      egress,
    },
  };
}
