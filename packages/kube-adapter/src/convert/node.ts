/**
 * Kubernetes Nodes → Margay Node resources: the node's labels, its InternalIP/ExternalIP addresses, an
 * orchestrator reference, the BGP identity from Calico's node annotations when present, and its pod CIDRs
 * (recorded as an annotation: the Node resource has no field for them).
 *
 * @packageDocumentation
 */

import {
  API_VERSION,
  type Node,
  type NodeAddress,
  type NodeBGPSpec,
  tryParseCidr,
  tryParseIp,
} from "@margay/api";
import type { KubeNode } from "../kube-types.js";
import { ORCHESTRATOR_KUBERNETES } from "./pod.js";

/** Annotation of converted Nodes listing the Kubernetes node's pod CIDRs, comma-separated. */
export const POD_CIDRS_ANNOTATION = "margay.io/pod-cidrs";
/** Calico's node annotation with the BGP IPv4 address and prefix (`10.0.0.5/24`). */
export const CALICO_IPV4_ADDRESS_ANNOTATION = "projectcalico.org/IPv4Address";
/** Calico's node annotation with the BGP IPv6 address and prefix. */
export const CALICO_IPV6_ADDRESS_ANNOTATION = "projectcalico.org/IPv6Address";
/** Calico's node annotation with the node's AS number. */
export const CALICO_AS_NUMBER_ANNOTATION = "projectcalico.org/ASNumber";

function addressWithPrefix(s: string | undefined, version: 4 | 6): string | undefined {
  if (s === undefined) return undefined;
  const c = tryParseCidr(s);
  return c !== undefined && c.version === version ? `${c.addressText}/${c.prefixLength}` : undefined;
}

/** Converts a Kubernetes Node into a Margay Node (named as the Kubernetes node). */
export function convertNode(node: KubeNode): Node {
  const name = node.metadata.name;
  const addresses: NodeAddress[] = [];
  for (const a of node.status?.addresses ?? []) {
    if (a.type !== "InternalIP" && a.type !== "ExternalIP") continue;
    const ip = tryParseIp(a.address);
    if (ip === undefined) continue;
    if (addresses.some((x) => x.address === ip.text && x.type === a.type)) continue;
    addresses.push({ address: ip.text, type: a.type });
  }
  const ann = node.metadata.annotations ?? {};
  const bgp: NodeBGPSpec = {};
  const v4 = addressWithPrefix(ann[CALICO_IPV4_ADDRESS_ANNOTATION], 4);
  const v6 = addressWithPrefix(ann[CALICO_IPV6_ADDRESS_ANNOTATION], 6);
  if (v4 !== undefined) bgp.ipv4Address = v4;
  if (v6 !== undefined) bgp.ipv6Address = v6;
  const asn = ann[CALICO_AS_NUMBER_ANNOTATION];
  if (asn !== undefined && /^\d{1,10}$/.test(asn) && Number(asn) > 0 && Number(asn) <= 4294967295) {
    bgp.asNumber = Number(asn);
  }
  const cidrs = node.spec?.podCIDRs ?? (node.spec?.podCIDR === undefined ? [] : [node.spec.podCIDR]);
  const podCIDRs = cidrs.map((c) => tryParseCidr(c)).filter((c) => c !== undefined);
  const annotations: Record<string, string> = {};
  if (podCIDRs.length > 0) {
    annotations[POD_CIDRS_ANNOTATION] = podCIDRs.map((c) => c.text).join(",");
  }
  return {
    apiVersion: API_VERSION,
    kind: "Node",
    metadata: {
      name,
      ...(node.metadata.labels === undefined ? {} : { labels: { ...node.metadata.labels } }),
      ...(Object.keys(annotations).length === 0 ? {} : { annotations }),
    },
    spec: {
      ...(Object.keys(bgp).length === 0 ? {} : { bgp }),
      orchRefs: [{ orchestrator: ORCHESTRATOR_KUBERNETES, nodeName: name }],
      ...(addresses.length === 0 ? {} : { addresses }),
    },
  };
}
