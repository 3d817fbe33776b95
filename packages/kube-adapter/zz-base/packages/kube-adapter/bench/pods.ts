/** The pods the benchmark syncs: Deployment-like labels, two named ports, one IPv4 address. */

import type { KubePod } from "../src/index.js";

/** Pod `i` of a cluster with `namespaces` namespaces and `nodes` nodes. */
export function makePod(i: number, namespaces: number, nodes: number): KubePod {
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  return {
    metadata: {
      name: `pod-${i}`,
      namespace: `ns-${i % namespaces}`,
      labels: { app: `app-${i % 50}`, "pod-template-hash": "5d78c9869d", v: "0" },
    },
    spec: {
      nodeName: `node-${i % nodes}`,
      serviceAccountName: "default",
      containers: [
        { name: "main", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] },
        { name: "sidecar", ports: [{ name: "metrics", containerPort: 9090, protocol: "TCP" }] },
      ],
    },
    status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
  };
}
