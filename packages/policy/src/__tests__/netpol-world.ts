/**
 * The cluster of the Kubernetes e2e network-policy suite (test/e2e/network/netpol), rebuilt as Margay
 * resources: namespaces x, y, z, each with pods a, b, c, every pod serving ports 80 and 81 over TCP, UDP
 * and SCTP under the container-port names `serve-<port>-<proto>`.
 */
import { convertNamespace } from "../convert/profiles.js";
import {
  LABEL_K8S_NAMESPACE_NAME,
  LABEL_NAMESPACE,
  LABEL_ORCHESTRATOR,
  LABEL_SERVICE_ACCOUNT,
} from "../model/constants.js";
import { API_VERSION, type WorkloadEndpoint } from "@margay/api";
import type { PolicyModelResource } from "../model/resources.js";

export const NAMESPACES = ["x", "y", "z"] as const;
export const PODS = ["a", "b", "c"] as const;
export type Ns = (typeof NAMESPACES)[number];
export type Pod = (typeof PODS)[number];
export type PodName = `${Ns}/${Pod}`;
export const ALL_PODS: readonly PodName[] = NAMESPACES.flatMap((ns) =>
  PODS.map((p) => `${ns}/${p}` as PodName),
);

/** Address of a pod: 10.0.<ns index>.<pod index>. */
export function podIp(pod: PodName): string {
  const [ns, p] = pod.split("/") as [Ns, Pod];
  return `10.0.${NAMESPACES.indexOf(ns) + 1}.${PODS.indexOf(p) + 1}`;
}

/** A pod as the kube-adapter would write it: Calico's implicit labels plus `pod: <name>`. */
export function podEndpoint(
  pod: PodName,
  extraLabels: Readonly<Record<string, string>> = {},
  node = "node-1",
): WorkloadEndpoint {
  const [ns, p] = pod.split("/") as [Ns, Pod];
  const ports = [80, 81].flatMap((port) =>
    (["TCP", "UDP", "SCTP"] as const).map((proto) => ({
      name: `serve-${port}-${proto.toLowerCase()}`,
      protocol: proto,
      port,
    })),
  );
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: {
      name: `node--1-k8s-${p}-eth0`,
      namespace: ns,
      labels: {
        pod: p,
        ...extraLabels,
        [LABEL_NAMESPACE]: ns,
        [LABEL_ORCHESTRATOR]: "k8s",
        [LABEL_SERVICE_ACCOUNT]: "default",
      },
    },
    spec: {
      node,
      interfaceName: `cali${ns}${p}`,
      ipNetworks: [`${podIp(pod)}/32`],
      profiles: [`kns.${ns}`, `ksa.${ns}.default`],
      serviceAccountName: "default",
      ports,
    },
  };
}

/** The workload-endpoint id of a pod (`<namespace>/<endpoint name>`). */
export function podId(pod: PodName): string {
  const [ns, p] = pod.split("/");
  return `${ns}/node--1-k8s-${p}-eth0`;
}

/** Labels of the cluster: extra namespace and pod labels on top of the defaults. */
export interface WorldLabels {
  readonly namespaces?: Partial<Record<Ns, Record<string, string>>>;
  readonly pods?: Partial<Record<PodName, Record<string, string>>>;
}

/** Namespace profiles and pod endpoints of the e2e cluster. */
export function world(labels: WorldLabels = {}): PolicyModelResource[] {
  const out: PolicyModelResource[] = [];
  for (const ns of NAMESPACES) {
    out.push(
      convertNamespace({
        metadata: {
          name: ns,
          labels: { ns, [LABEL_K8S_NAMESPACE_NAME]: ns, ...(labels.namespaces?.[ns] ?? {}) },
        },
      }),
    );
  }
  for (const pod of ALL_PODS) out.push(podEndpoint(pod, labels.pods?.[pod] ?? {}));
  return out;
}

/** Which pod may reach which: the e2e suite's truth table, starting from "everything allowed". */
export class Reachability {
  readonly #m = new Map<string, boolean>();

  constructor(initial = true) {
    for (const from of ALL_PODS) for (const to of ALL_PODS) this.#m.set(`${from}>${to}`, initial);
  }

  /** Every pod matching `from` to every pod matching `to` (a pattern matches a namespace and/or pod). */
  peers(from: { ns?: Ns; pod?: Pod }, to: { ns?: Ns; pod?: Pod }, allowed: boolean): this {
    const match = (p: PodName, pat: { ns?: Ns; pod?: Pod }) => {
      const [ns, pod] = p.split("/");
      return (pat.ns === undefined || pat.ns === ns) && (pat.pod === undefined || pat.pod === pod);
    };
    for (const f of ALL_PODS)
      for (const t of ALL_PODS) if (match(f, from) && match(t, to)) this.#m.set(`${f}>${t}`, allowed);
    return this;
  }

  /** Everything into `to`. */
  ingressTo(to: PodName, allowed: boolean): this {
    for (const f of ALL_PODS) this.#m.set(`${f}>${to}`, allowed);
    return this;
  }

  /** Everything out of `from`. */
  egressFrom(from: PodName, allowed: boolean): this {
    for (const t of ALL_PODS) this.#m.set(`${from}>${t}`, allowed);
    return this;
  }

  /** One pair. */
  pair(from: PodName, to: PodName, allowed: boolean): this {
    this.#m.set(`${from}>${to}`, allowed);
    return this;
  }

  get(from: PodName, to: PodName): boolean {
    return this.#m.get(`${from}>${to}`)!;
  }
}
