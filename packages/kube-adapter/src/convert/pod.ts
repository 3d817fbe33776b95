/**
 * Pods → WorkloadEndpoints, with Calico's names and labels so that a Calico user recognises them:
 * endpoint `<node>-k8s-<pod>-eth0` (each `-` inside a part doubled), host interface
 * `workloadInterfaceName({ namespace, workload: pod })` of `@margay/api` (the name the workload plumber
 * gives the pod's veth and the prefix the dataplane polices: `mgy` + 12 hex digits of
 * SHA-1(`<namespace>.<pod>`) by default, Calico's exact name with prefix `cali`), labels of the pod plus
 * `projectcalico.org/namespace`, `projectcalico.org/orchestrator` and `projectcalico.org/serviceaccount`,
 * profiles `kns.<namespace>` and `ksa.<namespace>.<serviceaccount>`.
 *
 * @packageDocumentation
 */

import {
  API_VERSION,
  DEFAULT_WORKLOAD_INTERFACE_PREFIX,
  tryParseIp,
  type WorkloadEndpoint,
  type WorkloadEndpointPort,
  workloadInterfaceName,
} from "@margay/api";
import {
  LABEL_NAMESPACE,
  LABEL_ORCHESTRATOR,
  LABEL_SERVICE_ACCOUNT,
  namespaceProfileName,
  serviceAccountProfileName,
} from "@margay/policy";
import type { KubeContainerPort, KubePod } from "../kube-types.js";

/** Orchestrator name of Kubernetes workloads (`k8s`). */
export const ORCHESTRATOR_KUBERNETES = "k8s";
/** The endpoint name of a pod's (only) interface. */
export const POD_ENDPOINT_NAME = "eth0";

/**
 * Pod (or Namespace) annotation naming the IPv4 pools a pod's address comes from: a JSON list of pool
 * names or CIDRs, as Calico's `cni.projectcalico.org/ipv4pools`. A pod's annotation wins over its
 * namespace's; either wins over the CNI network configuration's pools.
 */
export const POD_IPV4POOLS_ANNOTATION = "margay.io/ipv4pools";
/** As {@link POD_IPV4POOLS_ANNOTATION}, for IPv6 (Calico's `cni.projectcalico.org/ipv6pools`). */
export const POD_IPV6POOLS_ANNOTATION = "margay.io/ipv6pools";
/**
 * Pod annotation asking for exact addresses: a JSON list of IP addresses (at most one per family), taken
 * from IPAM as Calico's `cni.projectcalico.org/ipAddrs`. Not allowed together with the pool annotations.
 */
export const POD_IPADDRS_ANNOTATION = "margay.io/ipAddrs";

const escapePart = (s: string) => s.replaceAll("-", "--");

/**
 * The WorkloadEndpoint name Calico gives a pod's interface: `<node>-k8s-<pod>-<endpoint>` with every `-`
 * inside a part doubled, so the parts can be recovered from the name.
 */
export function workloadEndpointName(
  node: string,
  pod: string,
  endpoint: string = POD_ENDPOINT_NAME,
): string {
  return `${escapePart(node)}-${ORCHESTRATOR_KUBERNETES}-${escapePart(pod)}-${escapePart(endpoint)}`;
}

/**
 * The host-side interface name of a pod's `eth0`: `workloadInterfaceName({ namespace, workload: pod },
 * prefix)` of `@margay/api`, the one function every package derives it with. Default prefix
 * `DEFAULT_WORKLOAD_INTERFACE_PREFIX` (`mgy`); `cali` gives Calico's name.
 */
export function podInterfaceName(
  namespace: string,
  pod: string,
  prefix: string = DEFAULT_WORKLOAD_INTERFACE_PREFIX,
): string {
  return workloadInterfaceName({ namespace, workload: pod }, prefix);
}

/** Options of {@link convertPod}. */
export interface ConvertPodOptions {
  /** Workload interface prefix; must be the one the node's dataplane polices. Default `mgy`. */
  readonly interfacePrefix?: string | undefined;
}

/** Why a pod yields no endpoint, or `undefined` when it does. */
export function podSkipReason(pod: KubePod): "host-network" | "finished" | "unscheduled" | undefined {
  if (pod.spec?.hostNetwork === true) return "host-network";
  const phase = pod.status?.phase;
  if (phase === "Succeeded" || phase === "Failed") return "finished";
  if (pod.spec?.nodeName === undefined || pod.spec.nodeName === "") return "unscheduled";
  return undefined;
}

/** A dotted quad already in canonical form (no leading zeros): the common case, checked without parsing. */
const CANONICAL_V4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function hostNetwork(s: string): string | undefined {
  if (CANONICAL_V4.test(s)) return `${s}/32`;
  const ip = tryParseIp(s);
  return ip === undefined ? undefined : `${ip.text}/${ip.version === 4 ? 32 : 128}`;
}

function podIPs(pod: KubePod): string[] {
  const raw =
    pod.status?.podIPs !== undefined && pod.status.podIPs.length > 0
      ? pod.status.podIPs.map((p) => p.ip)
      : pod.status?.podIP !== undefined && pod.status.podIP !== ""
        ? [pod.status.podIP]
        : [];
  const out: string[] = [];
  for (const s of raw) {
    const net = hostNetwork(s);
    if (net !== undefined && !out.includes(net)) out.push(net);
  }
  return out;
}

function namedPorts(pod: KubePod): WorkloadEndpointPort[] {
  const ports: WorkloadEndpointPort[] = [];
  const seen = new Set<string>();
  // Sidecars (init containers that keep running) serve ports too.
  const containers = [
    ...(pod.spec?.containers ?? []),
    ...(pod.spec?.initContainers ?? []).filter((c) => c.restartPolicy === "Always"),
  ];
  for (const c of containers) {
    for (const p of c.ports ?? ([] as KubeContainerPort[])) {
      if (p.name === undefined || p.name === "") continue;
      const protocol = p.protocol ?? "TCP";
      const id = `${p.name}/${protocol}`;
      if (seen.has(id)) continue;
      seen.add(id);
      const port: WorkloadEndpointPort = { name: p.name, protocol, port: p.containerPort };
      if (p.hostPort !== undefined && p.hostPort !== 0) {
        port.hostPort = p.hostPort;
        if (p.hostIP !== undefined && p.hostIP !== "") port.hostIP = p.hostIP;
      }
      ports.push(port);
    }
  }
  return ports;
}

/** What a pod says its endpoint's labels, service account and profiles are. */
export interface PodEndpointFields {
  /** The pod's labels plus `projectcalico.org/namespace`, `/orchestrator` and `/serviceaccount`. */
  readonly labels: Record<string, string>;
  /** `spec.serviceAccountName`, when the pod has one. */
  readonly serviceAccountName: string | undefined;
  /** `kns.<ns>` and, with a service account, `ksa.<ns>.<sa>`. */
  readonly profiles: string[];
}

/**
 * The labels, service account and profiles of a pod's endpoint (the part of {@link convertPod} that
 * follows the pod's metadata; the pod controller keeps existing endpoints in step with it). The
 * `projectcalico.org/` labels are always ours: a pod's own label of the service-account name is dropped
 * when it has no service account, so no pod can claim one.
 */
export function podEndpointFields(pod: KubePod): PodEndpointFields {
  const namespace = pod.metadata.namespace ?? "default";
  const sa = pod.spec?.serviceAccountName;
  const hasSa = sa !== undefined && sa !== "";
  const labels: Record<string, string> = { ...(pod.metadata.labels ?? {}) };
  labels[LABEL_NAMESPACE] = namespace;
  labels[LABEL_ORCHESTRATOR] = ORCHESTRATOR_KUBERNETES;
  if (hasSa) labels[LABEL_SERVICE_ACCOUNT] = sa;
  else delete labels[LABEL_SERVICE_ACCOUNT];
  const profiles = [namespaceProfileName(namespace)];
  if (hasSa) profiles.push(serviceAccountProfileName(namespace, sa));
  return { labels, serviceAccountName: hasSa ? sa : undefined, profiles };
}

/**
 * Converts a pod into its WorkloadEndpoint, or `undefined` for pods that have none in Calico's model:
 * host-network pods, finished pods (`Succeeded`/`Failed`) and pods not yet scheduled to a node. A
 * scheduled pod without addresses yet gets an endpoint without `ipNetworks`.
 */
export function convertPod(pod: KubePod, options: ConvertPodOptions = {}): WorkloadEndpoint | undefined {
  if (podSkipReason(pod) !== undefined) return undefined;
  const namespace = pod.metadata.namespace ?? "default";
  const name = pod.metadata.name;
  const node = pod.spec!.nodeName!;
  const { labels, serviceAccountName: sa, profiles } = podEndpointFields(pod);
  const ipNetworks = podIPs(pod);
  const ports = namedPorts(pod);
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: { name: workloadEndpointName(node, name), namespace, labels },
    spec: {
      orchestrator: ORCHESTRATOR_KUBERNETES,
      node,
      pod: name,
      endpoint: POD_ENDPOINT_NAME,
      ...(sa !== undefined ? { serviceAccountName: sa } : {}),
      ...(ipNetworks.length > 0 ? { ipNetworks } : {}),
      profiles,
      interfaceName: podInterfaceName(namespace, name, options.interfacePrefix),
      ...(ports.length > 0 ? { ports } : {}),
    },
  };
}
