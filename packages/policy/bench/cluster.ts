/**
 * A synthetic cluster for the benchmark: namespaces with profiles, pods spread over nodes, Kubernetes
 * NetworkPolicies (pod, namespace and named-port peers) and global policies.
 */
import {
  convertNamespace,
  convertNetworkPolicy,
  type K8sNetworkPolicy,
  kubernetesTiers,
  type PolicyModelResource,
} from "../src/index.js";
import { API_VERSION, type GlobalNetworkPolicy, type WorkloadEndpoint } from "@margay/api";

export interface ClusterSpec {
  readonly namespaces: number;
  readonly endpoints: number;
  readonly policies: number;
  /** Share of the policies that are global (the rest are Kubernetes NetworkPolicies). */
  readonly globalShare: number;
  readonly nodes: number;
}

/** Deterministic pseudo-random numbers (mulberry32), so every run measures the same cluster. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const APPS = 10;

/** The app label pod `i` starts with in {@link buildCluster}. */
export const initialApp = (i: number, spec: ClusterSpec): number => Math.floor(i / spec.namespaces) % APPS;

export function endpoint(i: number, spec: ClusterSpec, app: number): WorkloadEndpoint {
  const ns = `ns-${i % spec.namespaces}`;
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: {
      name: `pod-${i}`,
      namespace: ns,
      labels: {
        app: `app-${app}`,
        version: `v${i % 3}`,
        tier: ["frontend", "backend", "db"][i % 3]!,
        "projectcalico.org/orchestrator": "k8s",
      },
    },
    spec: {
      // Consecutive runs of 7 pods per node: every node hosts pods of many namespaces.
      node: `node-${Math.floor(i / 7) % spec.nodes}`,
      interfaceName: `cali${i.toString(16).padStart(11, "0")}`,
      ipNetworks: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}/32`],
      profiles: [`kns.${ns}`],
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    },
  };
}

export function buildCluster(spec: ClusterSpec, seed = 1): PolicyModelResource[] {
  const r = rng(seed);
  const pick = (n: number) => Math.floor(r() * n);
  const out: PolicyModelResource[] = [...kubernetesTiers()];
  for (let n = 0; n < spec.namespaces; n++) {
    out.push(
      convertNamespace({
        metadata: { name: `ns-${n}`, labels: { team: `team-${n % 10}`, env: n % 2 === 0 ? "prod" : "dev" } },
      }),
    );
  }
  // Pod i lives in namespace i % namespaces; spread apps within each namespace.
  for (let i = 0; i < spec.endpoints; i++) out.push(endpoint(i, spec, initialApp(i, spec)));
  const globals = Math.round(spec.policies * spec.globalShare);
  for (let p = 0; p < spec.policies - globals; p++) {
    const ns = `ns-${p % spec.namespaces}`;
    const np: K8sNetworkPolicy = {
      metadata: { name: `np-${p}`, namespace: ns },
      spec: {
        podSelector: { matchLabels: { app: `app-${pick(APPS)}` } },
        policyTypes: ["Ingress", "Egress"],
        ingress: [
          { from: [{ podSelector: { matchLabels: { app: `app-${pick(APPS)}` } } }], ports: [{ port: 8080 }] },
          {
            from: [{ namespaceSelector: { matchLabels: { team: `team-${pick(10)}` } } }],
            ports: [{ port: "http" }],
          },
        ],
        egress: [
          {
            to: [
              {
                namespaceSelector: { matchLabels: { env: "prod" } },
                podSelector: { matchLabels: { tier: "db" } },
              },
            ],
          },
          { to: [{ ipBlock: { cidr: "0.0.0.0/0", except: ["10.0.0.0/8"] } }], ports: [{ port: 443 }] },
        ],
      },
    };
    out.push(convertNetworkPolicy(np));
  }
  for (let g = 0; g < globals; g++) {
    const gnp: GlobalNetworkPolicy = {
      apiVersion: API_VERSION,
      kind: "GlobalNetworkPolicy",
      metadata: { name: `gnp-${g}` },
      spec: {
        order: 100 + g,
        selector:
          g % 2 === 0
            ? `tier == 'db' && app == 'app-${pick(APPS)}'`
            : `has(version) && version == 'v${pick(3)}'`,
        ...(g % 3 === 0 ? { namespaceSelector: "env == 'prod'" } : {}),
        types: ["Ingress"],
        ingress: [
          { action: "Deny", source: { nets: ["192.168.0.0/16"] } },
          {
            action: "Pass",
            source: {
              selector: `app == 'app-${pick(APPS)}'`,
              namespaceSelector: `team == 'team-${pick(10)}'`,
            },
          },
        ],
      },
    };
    out.push(gnp);
  }
  return out;
}
