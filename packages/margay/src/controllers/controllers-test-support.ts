/**
 * Shared fixtures of the controllers' unit and interop tests: a datastore with one pool and a shared
 * test clock, allocations made the way the agent's workload API makes them, endpoints and pods.
 */
import { API_VERSION } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import { createIpam, type Ipam } from "@margay/ipam";
import type { KubePod } from "@margay/kube-adapter";
import { pool } from "../node/e2e-support.js";
import { IFNAME_ANNOTATION, workloadHandleId } from "../node/workload/endpoint.js";

/** A mutable test clock (ms since the epoch). */
export interface Clock {
  t: number;
}

/** One pool `10.80.0.0/16` with /26 blocks, and an IPAM client on the clock. */
export async function seed(ds: Datastore, clock: Clock): Promise<Ipam> {
  await ds.create(pool("p1", "10.80.0.0/16"));
  return createIpam({
    datastore: ds,
    now: () => clock.t,
    reclaimEmptyBlockAfterMs: Number.POSITIVE_INFINITY,
  });
}

/** A pod's address, allocated as the agent's workload API does (handle, attributes). */
export async function allocatePod(
  ipam: Ipam,
  node: string,
  namespace: string,
  pod: string,
  containerId = `c-${pod}`,
): Promise<{ ip: string; handleId: string; containerId: string }> {
  const handleId = workloadHandleId(containerId, "eth0");
  const r = await ipam.autoAssign({
    handleId,
    node,
    num4: 1,
    attrs: { node, namespace, pod, containerID: containerId, ifname: "eth0", type: "workload" },
  });
  return { ip: r.ipv4[0]!.ip, handleId, containerId };
}

/** A WorkloadEndpoint as the agent writes it. */
export async function putEndpoint(
  ds: Datastore,
  e: { node: string; namespace: string; pod: string; containerId: string; ip?: string | undefined },
): Promise<void> {
  await ds.create({
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: {
      name: `${e.node}-k8s-${e.pod}-eth0`,
      namespace: e.namespace,
      annotations: { [IFNAME_ANNOTATION]: "eth0" },
    },
    spec: {
      orchestrator: "k8s",
      node: e.node,
      pod: e.pod,
      containerID: e.containerId,
      endpoint: "eth0",
      interfaceName: `mgy${e.pod}`,
      ipNetworks: e.ip === undefined ? [] : [`${e.ip}/32`],
    },
  } as Parameters<Datastore["create"]>[0]);
}

/** A Kubernetes pod. */
export function kubePod(
  namespace: string,
  name: string,
  node: string,
  ip?: string,
  extra: Partial<KubePod> = {},
): KubePod {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { namespace, name },
    spec: { nodeName: node },
    status: ip === undefined ? { phase: "Running" } : { phase: "Running", podIP: ip, podIPs: [{ ip }] },
    ...extra,
  };
}

/** A pod source over a map (`namespace/name` keys), synced unless told otherwise. */
export function podSource(): {
  pods: Map<string, KubePod>;
  synced: boolean;
  source: { cache: { get(key: string): KubePod | undefined }; hasSynced(): boolean };
  put(p: KubePod): void;
} {
  const pods = new Map<string, KubePod>();
  const s = {
    pods,
    synced: true,
    source: { cache: { get: (k: string) => pods.get(k) }, hasSynced: () => s.synced },
    put(p: KubePod) {
      pods.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
    },
  };
  return s;
}

/** A Kubernetes Node source over a set of names. */
export function nodeSource(...names: string[]): {
  names: Set<string>;
  synced: boolean;
  source: { cache: { has(key: string): boolean }; hasSynced(): boolean };
} {
  const set = new Set(names);
  const s = {
    names: set,
    synced: true,
    source: { cache: { has: (k: string) => set.has(k) }, hasSynced: () => s.synced },
  };
  return s;
}

/** A Margay Node. */
export async function putNode(ds: Datastore, name: string, kubeNode?: string | undefined): Promise<void> {
  await ds.create({
    apiVersion: API_VERSION,
    kind: "Node",
    metadata: { name },
    spec: kubeNode === undefined ? {} : { orchRefs: [{ orchestrator: "k8s", nodeName: kubeNode }] },
  } as Parameters<Datastore["create"]>[0]);
}

/** The /26 block (the seeded pool's block size) holding an IPv4 address. */
export function block26(ip: string): string {
  const o = ip.split(".").map(Number);
  return `${o[0]}.${o[1]}.${o[2]}.${o[3]! & ~63}/26`;
}
