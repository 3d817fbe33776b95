/**
 * A realistic synthetic cluster, beside the adversarial one in `cluster.ts` (where every global policy
 * matches a fixed share of ALL endpoints, so references grow with endpoints × policies). Here, as in real
 * clusters, each endpoint is selected by a bounded number of policies:
 *
 * - namespace sizes follow Zipf's law (a few big namespaces, a long tail of small ones), every
 *   namespace at least one pod;
 * - each namespace has about one app per 10 pods and about one Kubernetes NetworkPolicy per 10 pods; a
 *   NetworkPolicy selects one app of its namespace, allows ingress from another app of the namespace, from
 *   namespaces of one team (bounded: 1 of 50 teams) on a named port, and egress to the namespace's DNS app;
 * - about 1% of the policies are global, each with bounded reach: a label only a few pods carry
 *   (`role: ingress-gw`, one per 1,000 pods) or one team's namespaces and one app name;
 * - pods are spread evenly over nodes of {@link RealisticSpec.localPerNode} pods each, so node-0 has that
 *   many local endpoints whatever the cluster size.
 *
 * Deterministic for a seed: every run measures the same cluster.
 */
import { API_VERSION, type GlobalNetworkPolicy, type WorkloadEndpoint } from "@margay/api";
import {
  convertNamespace,
  convertNetworkPolicy,
  type K8sNetworkPolicy,
  kubernetesTiers,
  type PolicyModelResource,
} from "../src/index.js";
import { rng } from "./cluster.js";

export interface RealisticSpec {
  readonly endpoints: number;
  readonly namespaces: number;
  readonly policies: number;
  /** Pods per node (node-0 is the local node in the scale benchmark). */
  readonly localPerNode: number;
  /** Zipf exponent of namespace sizes (1 = classic Zipf). */
  readonly zipf?: number | undefined;
}

/** Pods per app within a namespace (and pods per NetworkPolicy). */
const PODS_PER_APP = 10;
const TEAMS = 50;

/** Namespace sizes: Zipf-distributed, each ≥ 1, summing to `endpoints`. */
export function zipfSizes(namespaces: number, endpoints: number, s = 1): number[] {
  const w = Array.from({ length: namespaces }, (_, i) => 1 / (i + 1) ** s);
  const total = w.reduce((a, b) => a + b, 0);
  const spare = endpoints - namespaces;
  const sizes = w.map((x) => 1 + Math.floor((x / total) * spare));
  let left = endpoints - sizes.reduce((a, b) => a + b, 0);
  for (let i = 0; left > 0; i = (i + 1) % namespaces, left--) sizes[i]!++;
  return sizes;
}

/** One pod of the realistic cluster: `index` within namespace `ns`, cluster-wide number `i`. */
export function realisticEndpoint(
  i: number,
  ns: number,
  index: number,
  app: number,
  spec: RealisticSpec,
): WorkloadEndpoint {
  const name = `ns-${ns}`;
  const labels: Record<string, string> = {
    app: `app-${app}`,
    "pod-template-hash": `h${index % 4}`,
    "projectcalico.org/orchestrator": "k8s",
  };
  if (i % 1000 === 0) labels.role = "ingress-gw";
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: { name: `pod-${i}`, namespace: name, labels },
    spec: {
      node: `node-${Math.floor(i / spec.localPerNode)}`,
      interfaceName: `cali${i.toString(16).padStart(11, "0")}`,
      ipNetworks: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`],
      profiles: [`kns.${name}`],
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    },
  };
}

/** Where each pod lives and which app it starts with, for the cluster and for change generators. */
export interface RealisticLayout {
  readonly sizes: readonly number[];
  /** Pod i: [namespace, index within the namespace]. */
  readonly podNs: Int32Array;
  readonly podIndex: Int32Array;
  /** Apps in each namespace. */
  readonly apps: readonly number[];
}

export function realisticLayout(spec: RealisticSpec): RealisticLayout {
  const sizes = zipfSizes(spec.namespaces, spec.endpoints, spec.zipf ?? 1);
  const podNs = new Int32Array(spec.endpoints);
  const podIndex = new Int32Array(spec.endpoints);
  // Interleave namespaces over pod numbers (round-robin over namespaces that still have pods), so every
  // node hosts pods of several namespaces, big and small.
  const left = [...sizes];
  const given = new Array<number>(sizes.length).fill(0);
  let i = 0;
  let active = sizes.map((_, n) => n);
  while (i < spec.endpoints) {
    const next: number[] = [];
    for (const n of active) {
      podNs[i] = n;
      podIndex[i] = given[n]!++;
      i++;
      if (--left[n]! > 0) next.push(n);
      if (i >= spec.endpoints) break;
    }
    active = next;
  }
  const apps = sizes.map((s) => Math.max(1, Math.ceil(s / PODS_PER_APP)));
  return { sizes, podNs, podIndex, apps };
}

/** The app pod `i` starts with. */
export const realisticApp = (layout: RealisticLayout, i: number): number =>
  layout.podIndex[i]! % layout.apps[layout.podNs[i]!]!;

export function buildRealisticCluster(spec: RealisticSpec, seed = 1): PolicyModelResource[] {
  const r = rng(seed);
  const pick = (n: number) => Math.floor(r() * n);
  const layout = realisticLayout(spec);
  const out: PolicyModelResource[] = [...kubernetesTiers()];
  for (let n = 0; n < spec.namespaces; n++) {
    out.push(
      convertNamespace({
        metadata: {
          name: `ns-${n}`,
          labels: { team: `team-${n % TEAMS}`, env: n % 3 === 0 ? "prod" : "dev" },
        },
      }),
    );
  }
  for (let i = 0; i < spec.endpoints; i++) {
    out.push(realisticEndpoint(i, layout.podNs[i]!, layout.podIndex[i]!, realisticApp(layout, i), spec));
  }
  const globals = Math.max(1, Math.round(spec.policies / 100));
  const local = spec.policies - globals;
  // NetworkPolicies: spread over namespaces in proportion to their size (about one per app).
  const weights = layout.apps;
  const totalApps = weights.reduce((a, b) => a + b, 0);
  let p = 0;
  for (let n = 0; n < spec.namespaces && p < local; n++) {
    const count = Math.max(1, Math.round((weights[n]! / totalApps) * local));
    for (let k = 0; k < count && p < local; k++, p++) {
      const apps = layout.apps[n]!;
      const np: K8sNetworkPolicy = {
        metadata: { name: `np-${p}`, namespace: `ns-${n}` },
        spec: {
          podSelector: { matchLabels: { app: `app-${k % apps}` } },
          policyTypes: ["Ingress", "Egress"],
          ingress: [
            {
              from: [{ podSelector: { matchLabels: { app: `app-${pick(apps)}` } } }],
              ports: [{ port: 8080 }],
            },
            {
              from: [{ namespaceSelector: { matchLabels: { team: `team-${pick(TEAMS)}` } } }],
              ports: [{ port: "http" }],
            },
          ],
          egress: [
            {
              to: [{ podSelector: { matchLabels: { app: "app-0" } } }],
              ports: [{ port: 53, protocol: "UDP" }],
            },
            { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] } }], ports: [{ port: 443 }] },
          ],
        },
      };
      out.push(convertNetworkPolicy(np));
    }
  }
  for (let g = 0; g < globals; g++) {
    const gnp: GlobalNetworkPolicy = {
      apiVersion: API_VERSION,
      kind: "GlobalNetworkPolicy",
      metadata: { name: `gnp-${g}` },
      spec: {
        order: 100 + g,
        selector: g % 2 === 0 ? "role == 'ingress-gw'" : `app == 'app-${pick(3)}'`,
        ...(g % 2 === 1 ? { namespaceSelector: `team == 'team-${pick(TEAMS)}'` } : {}),
        types: ["Ingress"],
        ingress: [
          { action: "Deny", source: { nets: ["192.168.0.0/16"] } },
          {
            action: "Allow",
            source: { selector: "role == 'ingress-gw'" },
          },
        ],
      },
    };
    out.push(gnp);
  }
  return out;
}
