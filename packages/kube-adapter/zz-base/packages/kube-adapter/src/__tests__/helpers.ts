/** Shared helpers of this package's tests (not part of the public API). */

import type { KubeNode, KubeObject, KubePod } from "../kube-types.js";

/** Polls `cond` until it holds, failing after `timeoutMs` with `what`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A running pod on `node` with one IPv4 address and a named port. */
export function pod(namespace: string, name: string, node: string, ip: string, labels = {}): KubePod {
  return {
    metadata: { name, namespace, labels: { app: name.split("-")[0]!, ...labels } },
    spec: {
      nodeName: node,
      serviceAccountName: "default",
      containers: [{ name: "main", ports: [{ name: "http", containerPort: 8080, protocol: "TCP" }] }],
    },
    status: { phase: "Running", podIP: ip, podIPs: [{ ip }] },
  };
}

/** A namespace with labels. */
export function namespace(name: string, labels: Record<string, string> = {}): KubeObject {
  return { metadata: { name, labels } };
}

/** A node with an InternalIP and a pod CIDR. */
export function node(name: string, ip: string, podCIDR: string): KubeNode {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name } },
    spec: { podCIDR, podCIDRs: [podCIDR] },
    status: {
      addresses: [
        { type: "InternalIP", address: ip },
        { type: "Hostname", address: name },
      ],
    },
  };
}

/** A NetworkPolicy allowing ingress from pods labelled `role=<from>` to pods labelled `app=<app>`. */
export function networkPolicy(namespace: string, name: string, app: string, from: string): KubeObject {
  return {
    metadata: { name, namespace },
    spec: {
      podSelector: { matchLabels: { app } },
      policyTypes: ["Ingress"],
      ingress: [{ from: [{ podSelector: { matchLabels: { role: from } } }], ports: [{ port: 8080 }] }],
    },
  } as KubeObject;
}
