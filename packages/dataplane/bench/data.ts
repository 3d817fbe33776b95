import { performance } from "node:perf_hooks";
import { size } from "../../../scripts/bench-kit.js";
import type { PolicyModelResource } from "@margay/policy";
import type { DataplaneUpdate } from "@margay/dataplane";

/** `API_VERSION` of `@margay/api`: the resources the policy calculation reads carry it. */
const API_VERSION = "margay.io/v1" as const;

export const ROUTES = size(10_000, 500);
export const ENDPOINTS = size(1_000, 50);
export const POLICIES = size(100, 10);
export const NODES = size(200, 10);
export const ROUNDS = size(5, 2);
export const DELTAS = size(9, 3);

export const ms = (t0: number) => performance.now() - t0;

export const ipOf = (i: number) => `10.${100 + Math.floor(i / 250)}.${i % 250}.${2}`;
export const ifOf = (i: number) => `mgyb${i.toString(16).padStart(6, "0")}`;

export function workload(i: number): PolicyModelResource {
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: {
      name: `pod-${i}`,
      namespace: "bench",
      labels: { app: `app-${i % POLICIES}`, "projectcalico.org/namespace": "bench" },
    },
    spec: {
      node: "bench-node",
      interfaceName: ifOf(i),
      ipNetworks: [`${ipOf(i)}/32`],
      profiles: ["kns.bench"],
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    },
  };
}

export function resources(): PolicyModelResource[] {
  const out: PolicyModelResource[] = [
    {
      apiVersion: API_VERSION,
      kind: "Profile",
      metadata: { name: "kns.bench" },
      spec: { ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] },
    },
  ];
  for (let p = 0; p < POLICIES; p++) {
    out.push({
      apiVersion: API_VERSION,
      kind: "NetworkPolicy",
      metadata: { name: `pol-${p}`, namespace: "bench" },
      spec: {
        selector: `app == 'app-${p}'`,
        types: ["Ingress", "Egress"],
        ingress: [
          {
            action: "Allow",
            protocol: "TCP",
            source: { selector: `app == 'app-${(p + 1) % POLICIES}'` },
            destination: { ports: [80, 443, "http"] },
          },
          { action: "Deny", source: { nets: ["10.0.0.0/8"], notNets: [`10.${100 + (p % 4)}.0.0/16`] } },
          { action: "Allow", protocol: "UDP", destination: { ports: [53] } },
        ],
        egress: [{ action: "Allow", destination: { nets: ["10.0.0.0/8"] } }, { action: "Deny" }],
      },
    } as PolicyModelResource);
  }
  for (let i = 0; i < ENDPOINTS; i++) out.push(workload(i));
  return out;
}

export function routeSide(): DataplaneUpdate[] {
  const ups: DataplaneUpdate[] = [
    { kind: "host-update", node: "bench-node", addresses: ["172.20.0.1/16"] },
    {
      kind: "pool-update",
      cidr: "10.64.0.0/10",
      encapsulation: "none",
      crossSubnet: false,
      natOutgoing: true,
    },
    {
      kind: "pool-update",
      cidr: "10.100.0.0/14",
      encapsulation: "none",
      crossSubnet: false,
      natOutgoing: true,
    },
  ];
  for (let n = 0; n < NODES; n++)
    ups.push({
      kind: "host-update",
      node: `n${n}`,
      addresses: [`172.20.${1 + Math.floor(n / 250)}.${(n % 250) + 1}/16`],
    });
  for (let i = 0; i < ENDPOINTS; i++)
    ups.push({ kind: "route-update", dst: `${ipOf(i)}/32`, type: "local-workload", ifname: ifOf(i) });
  for (let r = 0; ENDPOINTS + r < ROUTES; r++) {
    const dst = `10.${64 + Math.floor(r / 1024)}.${Math.floor((r % 1024) / 4)}.${(r % 4) * 64}/26`;
    const nodes = r % 10 === 0 ? [`n${r % NODES}`, `n${(r + 1) % NODES}`] : [`n${r % NODES}`];
    ups.push({ kind: "route-update", dst, type: "remote-block", nodes });
  }
  return ups;
}
