/**
 * The truth tables of the upstream Kubernetes e2e network-policy suite (kubernetes/kubernetes
 * test/e2e/network/netpol/network_policy.go), re-encoded as data. Every case runs on the full 3×3 cluster
 * of `netpol-world.ts`; self-traffic is not judged (the suite ignores loopback too). A case is a series
 * of steps; each step is the complete set of policies and labels at that moment plus the probes to check.
 * The endPort cases follow the suite's `[Feature:NetworkPolicyEndPort]` tests of earlier releases.
 */
import type {
  K8sLabelSelector,
  K8sNetworkPolicy,
  K8sNetworkPolicyPeer,
  K8sNetworkPolicyPort,
} from "../convert/kubernetes-types.js";
import { type Ns, type PodName, podIp, Reachability, type WorldLabels } from "./netpol-world.js";

export interface Probe {
  readonly protocol: "TCP" | "UDP" | "SCTP";
  readonly port: 80 | 81;
  readonly expect: Reachability;
}

export interface Step {
  readonly policies: readonly K8sNetworkPolicy[];
  readonly labels?: WorldLabels;
  readonly probes: readonly Probe[];
}

export interface NetpolCase {
  readonly name: string;
  readonly steps: readonly Step[];
}

type Ingress = { from?: K8sNetworkPolicyPeer[]; ports?: K8sNetworkPolicyPort[] };
type Egress = { to?: K8sNetworkPolicyPeer[]; ports?: K8sNetworkPolicyPort[] };

function policy(
  ns: Ns,
  name: string,
  podSelector: K8sLabelSelector,
  opts: { ingress?: Ingress[]; egress?: Egress[]; types?: ("Ingress" | "Egress")[] },
): K8sNetworkPolicy {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name, namespace: ns },
    spec: {
      podSelector,
      ...(opts.types === undefined ? {} : { policyTypes: opts.types }),
      ...(opts.ingress === undefined ? {} : { ingress: opts.ingress }),
      ...(opts.egress === undefined ? {} : { egress: opts.egress }),
    },
  };
}

const all: K8sLabelSelector = {};
const pod = (p: string): K8sLabelSelector => ({ matchLabels: { pod: p } });
const nsName = (n: Ns): K8sLabelSelector => ({ matchLabels: { "kubernetes.io/metadata.name": n } });
const nsNotIn = (n: Ns): K8sLabelSelector => ({
  matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "NotIn", values: [n] }],
});
const R = () => new Reachability(true);
const tcp = (port: 80 | 81, expect: Reachability): Probe => ({ protocol: "TCP", port, expect });

/** Upstream: isolating x for ingress (a policy with no ingress rules, types [Ingress]). */
const denyIngressX = (name = "deny-ingress") => policy("x", name, all, { types: ["Ingress"], ingress: [] });

export const NETPOL_CASES: readonly NetpolCase[] = [
  {
    name: "default-deny-ingress isolates every pod of x",
    steps: [{ policies: [denyIngressX()], probes: [tcp(80, R().peers({}, { ns: "x" }, false))] }],
  },
  {
    name: "default-deny-all isolates x both ways",
    steps: [
      {
        policies: [policy("x", "deny-all", all, { types: ["Ingress", "Egress"], ingress: [], egress: [] })],
        probes: [tcp(80, R().peers({}, { ns: "x" }, false).peers({ ns: "x" }, {}, false))],
      },
    ],
  },
  {
    name: "x/a accepts only x/b (podSelector, same namespace)",
    steps: [
      {
        policies: [
          policy("x", "x-a-allows-x-b", pod("a"), { ingress: [{ from: [{ podSelector: pod("b") }] }] }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false).pair("x/b", "x/a", true))],
      },
    ],
  },
  {
    name: "namespace default-deny plus an allow-all-namespaces policy for x/a",
    steps: [
      {
        policies: [
          denyIngressX("deny-all"),
          policy("x", "allow-all-to-a", pod("a"), {
            ingress: [{ from: [{ podSelector: {}, namespaceSelector: {} }] }],
          }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", true).ingressTo("x/b", false).ingressTo("x/c", false))],
      },
    ],
  },
  {
    name: "empty namespaceSelector admits pods of every namespace",
    steps: [
      {
        policies: [
          policy("x", "allow-from-another-ns", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: { matchLabels: {} } }] }],
          }),
        ],
        probes: [tcp(80, R())],
      },
    ],
  },
  {
    name: "namespaceSelector by name admits only namespace y",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-ns-selector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y") }] }],
          }),
        ],
        probes: [
          tcp(
            80,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
        ],
      },
    ],
  },
  {
    name: "podSelector with matchExpressions In",
    steps: [
      {
        policies: [
          policy("x", "x-a-allows-x-b", pod("a"), {
            ingress: [
              {
                from: [
                  { podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b"] }] } },
                ],
              },
            ],
          }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false).pair("x/b", "x/a", true))],
      },
    ],
  },
  {
    name: "namespaceSelector with matchExpressions In",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-match-selector", pod("a"), {
            ingress: [
              {
                from: [
                  {
                    namespaceSelector: {
                      matchExpressions: [
                        { key: "kubernetes.io/metadata.name", operator: "In", values: ["y"] },
                      ],
                    },
                  },
                ],
              },
            ],
          }),
        ],
        probes: [
          tcp(
            80,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
        ],
      },
    ],
  },
  {
    name: "podSelector OR namespaceSelector (two peers)",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-match-selector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsNotIn("x") }, { podSelector: pod("b") }] }],
          }),
        ],
        probes: [tcp(80, R().pair("x/c", "x/a", false))],
      },
    ],
  },
  {
    name: "podSelector AND namespaceSelector (one peer)",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-podselector-and-nsselector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsNotIn("x"), podSelector: pod("b") }] }],
          }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false).pair("y/b", "x/a", true).pair("z/b", "x/a", true))],
      },
    ],
  },
  {
    name: "pods {b,c} of namespaces other than x",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-z-pod-b-c", pod("a"), {
            ingress: [
              {
                from: [
                  {
                    namespaceSelector: nsNotIn("x"),
                    podSelector: { matchExpressions: [{ key: "pod", operator: "In", values: ["b", "c"] }] },
                  },
                ],
              },
            ],
          }),
        ],
        probes: [
          tcp(
            80,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ pod: "a" }, { ns: "x", pod: "a" }, false),
          ),
        ],
      },
    ],
  },
  {
    name: "any of several podSelectors",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-x-pod-b-c", pod("a"), {
            ingress: [{ from: [{ podSelector: pod("b") }, { podSelector: pod("c") }] }],
          }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false).pair("x/b", "x/a", true).pair("x/c", "x/a", true))],
      },
    ],
  },
  {
    name: "only y/a, by namespace and pod selector together",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-pod-a-via-namespace-pod-selector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y"), podSelector: pod("a") }] }],
          }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false).pair("y/a", "x/a", true))],
      },
    ],
  },
  {
    name: "port 81 from namespace y only; stacking a port-80 policy opens port 80 too",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-ns-selector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y") }], ports: [{ port: 81, protocol: "TCP" }] }],
          }),
        ],
        probes: [
          tcp(
            81,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
          tcp(80, R().ingressTo("x/a", false)),
        ],
      },
      {
        policies: [
          policy("x", "allow-client-a-via-ns-selector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y") }], ports: [{ port: 81, protocol: "TCP" }] }],
          }),
          policy("x", "allow-client-a-via-ns-selector-80", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y") }], ports: [{ port: 80, protocol: "TCP" }] }],
          }),
        ],
        probes: [
          tcp(
            80,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
        ],
      },
    ],
  },
  {
    name: "allow-all ingress policy keeps everything open on both ports",
    steps: [
      { policies: [policy("x", "allow-all", {}, { ingress: [{}] })], probes: [tcp(80, R()), tcp(81, R())] },
    ],
  },
  {
    name: "named port serve-81-tcp opens 81 and isolates 80 for namespace x",
    steps: [
      {
        policies: [policy("x", "allow-all", {}, { ingress: [{ ports: [{ port: "serve-81-tcp" }] }] })],
        probes: [tcp(81, R()), tcp(80, R().peers({}, { ns: "x" }, false))],
      },
    ],
  },
  {
    name: "named port serve-80-tcp from namespace y; 81 closed for everyone",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-ns-selector-80", pod("a"), {
            ingress: [
              {
                from: [{ namespaceSelector: nsName("y") }],
                ports: [{ port: "serve-80-tcp", protocol: "TCP" }],
              },
            ],
          }),
        ],
        probes: [
          tcp(
            80,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
          tcp(81, R().ingressTo("x/a", false)),
        ],
      },
    ],
  },
  {
    name: "egress by named port serve-80-tcp",
    steps: [
      {
        policies: [
          policy(
            "x",
            "allow-egress",
            {},
            { types: ["Egress"], egress: [{ ports: [{ port: "serve-80-tcp" }] }] },
          ),
        ],
        probes: [tcp(80, R()), tcp(81, R().peers({ ns: "x" }, {}, false))],
      },
    ],
  },
  {
    name: "an updated policy (allow-all → deny-all) is enforced",
    steps: [
      {
        policies: [policy("x", "allow-all-mutate-to-deny-all", {}, { ingress: [{}] })],
        probes: [tcp(81, R())],
      },
      {
        policies: [policy("x", "allow-all-mutate-to-deny-all", {}, { ingress: [] })],
        probes: [tcp(81, R().peers({}, { ns: "x" }, false))],
      },
    ],
  },
  {
    name: "a namespace gaining a label gains access",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-ns-selector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: "updated" } } }] }],
          }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false))],
      },
      {
        policies: [
          policy("x", "allow-client-a-via-ns-selector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns2: "updated" } } }] }],
          }),
        ],
        labels: { namespaces: { y: { ns2: "updated" } } },
        probes: [tcp(80, R().ingressTo("x/a", false).peers({ ns: "y" }, {}, true))],
      },
    ],
  },
  {
    name: "a pod gaining a label gains access",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-pod-selector", pod("a"), {
            ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b", pod2: "updated" } } }] }],
          }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false))],
      },
      {
        policies: [
          policy("x", "allow-client-a-via-pod-selector", pod("a"), {
            ingress: [{ from: [{ podSelector: { matchLabels: { pod: "b", pod2: "updated" } } }] }],
          }),
        ],
        labels: { pods: { "x/b": { pod2: "updated" } } },
        probes: [tcp(80, R().ingressTo("x/a", false).pair("x/b", "x/a", true))],
      },
    ],
  },
  {
    name: "empty podSelector peer admits only the policy's namespace",
    steps: [
      {
        policies: [
          policy(
            "x",
            "deny-empty-policy",
            {},
            { ingress: [{ from: [{ podSelector: { matchLabels: {} } }] }] },
          ),
        ],
        probes: [tcp(80, R().peers({ ns: "y" }, { ns: "x" }, false).peers({ ns: "z" }, { ns: "x" }, false))],
      },
    ],
  },
  {
    name: "a pod gaining a label becomes isolated",
    steps: [
      {
        policies: [
          policy(
            "x",
            "deny-ingress-via-label-selector",
            { matchLabels: { target: "isolated" } },
            { types: ["Ingress"], ingress: [] },
          ),
        ],
        probes: [tcp(80, R())],
      },
      {
        policies: [
          policy(
            "x",
            "deny-ingress-via-label-selector",
            { matchLabels: { target: "isolated" } },
            { types: ["Ingress"], ingress: [] },
          ),
        ],
        labels: { pods: { "x/a": { target: "isolated" } } },
        probes: [tcp(80, R().ingressTo("x/a", false))],
      },
    ],
  },
  {
    name: "deny all egress of x/a",
    steps: [
      {
        policies: [policy("x", "deny-egress-pod-a", pod("a"), { types: ["Egress"], egress: [] })],
        probes: [tcp(80, R().egressFrom("x/a", false))],
      },
    ],
  },
  {
    name: "deny all egress of namespace x",
    steps: [
      {
        policies: [policy("x", "deny-egress-ns-x", all, { types: ["Egress"], egress: [] })],
        probes: [tcp(80, R().peers({ ns: "x" }, {}, false))],
      },
    ],
  },
  {
    name: "ingress and egress rules in one policy",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-pod-selector", pod("a"), {
            types: ["Egress", "Ingress"],
            ingress: [{ from: [{ podSelector: pod("b") }] }],
            egress: [{ ports: [{ port: 80 }] }],
          }),
        ],
        probes: [
          tcp(80, R().ingressTo("x/a", false).pair("x/b", "x/a", true)),
          tcp(81, R().ingressTo("x/a", false).egressFrom("x/a", false).pair("x/b", "x/a", true)),
        ],
      },
    ],
  },
  {
    name: "client-side egress denial wins over a server that allows",
    steps: [
      {
        policies: [
          policy("x", "allow-to-ns-y-pod-a", pod("a"), {
            types: ["Egress"],
            egress: [{ to: [{ namespaceSelector: nsName("y"), podSelector: pod("a") }] }],
          }),
          policy("y", "allow-from-xa-on-ya-match-selector", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("x"), podSelector: pod("a") }] }],
          }),
          policy("y", "allow-from-xa-on-yb-match-selector", pod("b"), {
            ingress: [{ from: [{ namespaceSelector: nsName("x"), podSelector: pod("a") }] }],
          }),
        ],
        probes: [
          tcp(
            80,
            R()
              .peers({ ns: "x", pod: "a" }, {}, false)
              .peers({}, { ns: "y", pod: "a" }, false)
              .peers({ ns: "x", pod: "a" }, { ns: "y", pod: "a" }, true)
              .peers({}, { ns: "y", pod: "b" }, false),
          ),
        ],
      },
    ],
  },
  {
    name: "egress only to y/a by namespace and pod selector",
    steps: [
      {
        policies: [
          policy("x", "allow-to-ns-y-pod-a", pod("a"), {
            types: ["Egress"],
            egress: [{ to: [{ namespaceSelector: nsName("y"), podSelector: pod("a") }] }],
          }),
        ],
        probes: [tcp(80, R().egressFrom("x/a", false).pair("x/a", "y/a", true))],
      },
    ],
  },
  {
    name: "protocol without port: TCP open, UDP closed",
    steps: [
      {
        policies: [
          policy("x", "allow-ingress-by-proto", pod("a"), { ingress: [{ ports: [{ protocol: "TCP" }] }] }),
        ],
        probes: [tcp(80, R()), { protocol: "UDP", port: 80, expect: R().ingressTo("x/a", false) }],
      },
    ],
  },
  {
    name: "an allow-all ingress policy overrides a narrower one",
    steps: [
      {
        policies: [policy("x", "allow-ingress-port-80", {}, { ingress: [{ ports: [{ port: 80 }] }] })],
        probes: [tcp(81, R().peers({}, { ns: "x" }, false))],
      },
      {
        policies: [
          policy("x", "allow-ingress-port-80", {}, { ingress: [{ ports: [{ port: 80 }] }] }),
          policy("x", "allow-ingress", {}, { ingress: [{}] }),
        ],
        probes: [tcp(81, R())],
      },
    ],
  },
  {
    name: "an allow-all egress policy overrides a narrower one",
    steps: [
      {
        policies: [
          policy("x", "allow-egress-port-80", {}, { types: ["Egress"], egress: [{ ports: [{ port: 80 }] }] }),
        ],
        probes: [tcp(81, R().peers({ ns: "x" }, {}, false))],
      },
      {
        policies: [
          policy("x", "allow-egress-port-80", {}, { types: ["Egress"], egress: [{ ports: [{ port: 80 }] }] }),
          policy("x", "allow-egress", {}, { types: ["Egress"], egress: [{}] }),
        ],
        probes: [tcp(81, R())],
      },
    ],
  },
  {
    name: "policies stop applying once deleted",
    steps: [
      {
        policies: [policy("x", "deny-all", all, { types: ["Ingress", "Egress"], ingress: [], egress: [] })],
        probes: [tcp(80, R().peers({ ns: "x" }, {}, false).peers({}, { ns: "x" }, false))],
      },
      { policies: [], probes: [tcp(80, R())] },
    ],
  },
  {
    name: "egress to one pod's /32 ipBlock",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-cidr-egress-rule", pod("a"), {
            types: ["Egress"],
            egress: [{ to: [{ ipBlock: { cidr: `${podIp("y/b")}/32` } }] }],
          }),
        ],
        probes: [tcp(80, R().egressFrom("x/a", false).pair("x/a", "y/b", true))],
      },
    ],
  },
  {
    name: "ipBlock except carves one pod out of a large CIDR",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-cidr-egress-rule", pod("a"), {
            types: ["Egress"],
            egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8", except: [`${podIp("x/b")}/32`] } }] }],
          }),
        ],
        probes: [tcp(80, R().pair("x/a", "x/b", false))],
      },
      {
        policies: [
          policy("x", "allow-client-a-via-cidr-egress-rule", pod("a"), {
            types: ["Egress"],
            egress: [{ to: [{ ipBlock: { cidr: `${podIp("x/b")}/32` } }] }],
          }),
        ],
        probes: [tcp(80, R().egressFrom("x/a", false).pair("x/a", "x/b", true))],
      },
    ],
  },
  {
    name: "an address in both CIDR and except of one policy is allowed by another",
    steps: [
      {
        policies: [
          policy("x", "allow-large-except-b", pod("a"), {
            types: ["Egress"],
            egress: [{ to: [{ ipBlock: { cidr: "10.0.0.0/8", except: [`${podIp("x/b")}/32`] } }] }],
          }),
          policy("x", "allow-b", pod("a"), {
            types: ["Egress"],
            egress: [{ to: [{ ipBlock: { cidr: `${podIp("x/b")}/32` } }] }],
          }),
        ],
        probes: [tcp(80, R())],
      },
    ],
  },
  {
    name: "ingress and egress of one pod are controlled independently",
    steps: [
      {
        policies: [policy("x", "allow-egress-for-target", pod("a"), { types: ["Egress"], egress: [{}] })],
        probes: [tcp(80, R())],
      },
      {
        policies: [
          policy("x", "allow-egress-for-target", pod("a"), { types: ["Egress"], egress: [{}] }),
          policy("x", "deny-ingress-via-label-selector", pod("a"), { types: ["Ingress"], ingress: [] }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false))],
      },
    ],
  },
  {
    name: "an SCTP rule does not open TCP",
    steps: [
      {
        policies: [
          denyIngressX(),
          policy("x", "allow-only-sctp-ingress-on-port-81", pod("a"), {
            ingress: [{ ports: [{ port: 81, protocol: "SCTP" }] }],
          }),
        ],
        probes: [
          tcp(81, R().peers({}, { ns: "x" }, false)),
          { protocol: "SCTP", port: 81, expect: R().ingressTo("x/b", false).ingressTo("x/c", false) },
        ],
      },
    ],
  },
  {
    name: "a pod selected only by an SCTP rule is isolated for TCP",
    steps: [
      {
        policies: [
          policy("x", "allow-only-sctp-ingress-on-port-80", pod("a"), {
            ingress: [{ ports: [{ port: 80, protocol: "SCTP" }] }],
          }),
        ],
        probes: [tcp(81, R().ingressTo("x/a", false)), { protocol: "SCTP", port: 80, expect: R() }],
      },
    ],
  },
  {
    name: "a UDP rule does not open TCP",
    steps: [
      {
        policies: [
          policy("x", "allow-only-udp-ingress-on-port-81", pod("a"), {
            ingress: [{ ports: [{ port: 81, protocol: "UDP" }] }],
          }),
        ],
        probes: [tcp(81, R().ingressTo("x/a", false)), { protocol: "UDP", port: 81, expect: R() }],
      },
    ],
  },
  {
    name: "namespaceSelector on the immutable kubernetes.io/metadata.name label",
    steps: [
      {
        policies: [
          policy("x", "allow-client-a-via-ns-selector-for-immutable-ns-label", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y") }] }],
          }),
        ],
        probes: [
          tcp(
            80,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
        ],
      },
    ],
  },
  {
    name: "egress NotIn namespace y on the immutable name label",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-match-selector-for-immutable-ns-label", pod("a"), {
            types: ["Egress"],
            egress: [{ to: [{ namespaceSelector: nsNotIn("y") }] }],
          }),
        ],
        probes: [tcp(80, R().peers({ ns: "x", pod: "a" }, { ns: "y" }, false))],
      },
    ],
  },
  {
    name: "UDP: default-deny-ingress",
    steps: [
      {
        policies: [denyIngressX("deny-all")],
        probes: [{ protocol: "UDP", port: 80, expect: R().peers({}, { ns: "x" }, false) }],
      },
    ],
  },
  {
    name: "UDP: port 81 from namespace y",
    steps: [
      {
        policies: [
          policy("x", "allow-ingress-on-port-81-ns-x", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y") }], ports: [{ port: 81, protocol: "UDP" }] }],
          }),
        ],
        probes: [
          {
            protocol: "UDP",
            port: 81,
            expect: R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          },
        ],
      },
    ],
  },
  {
    name: "UDP: only y/a by namespace and pod selector",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-pod-a", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y"), podSelector: pod("a") }] }],
          }),
        ],
        probes: [{ protocol: "UDP", port: 80, expect: R().ingressTo("x/a", false).pair("y/a", "x/a", true) }],
      },
    ],
  },
  {
    name: "SCTP: default-deny-ingress",
    steps: [
      {
        policies: [denyIngressX("deny-all")],
        probes: [{ protocol: "SCTP", port: 80, expect: R().peers({}, { ns: "x" }, false) }],
      },
    ],
  },
  {
    name: "SCTP: port 81 from namespace y",
    steps: [
      {
        policies: [
          policy("x", "allow-ingress-on-port-81-ns-x", pod("a"), {
            ingress: [
              { from: [{ namespaceSelector: nsName("y") }], ports: [{ port: 81, protocol: "SCTP" }] },
            ],
          }),
        ],
        probes: [
          {
            protocol: "SCTP",
            port: 81,
            expect: R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          },
        ],
      },
    ],
  },
  {
    name: "SCTP: only y/a by namespace and pod selector",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-pod-a", pod("a"), {
            ingress: [{ from: [{ namespaceSelector: nsName("y"), podSelector: pod("a") }] }],
          }),
        ],
        probes: [
          { protocol: "SCTP", port: 80, expect: R().ingressTo("x/a", false).pair("y/a", "x/a", true) },
        ],
      },
    ],
  },
  {
    name: "endPort: range 80–81 from namespace y opens both ports",
    steps: [
      {
        policies: [
          policy("x", "allow-ns-y-ports-80-81", pod("a"), {
            ingress: [
              {
                from: [{ namespaceSelector: nsName("y") }],
                ports: [{ port: 80, endPort: 81, protocol: "TCP" }],
              },
            ],
          }),
        ],
        probes: [
          tcp(
            80,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
          tcp(
            81,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
        ],
      },
    ],
  },
  {
    name: "endPort: range 81–9000 leaves 80 closed",
    steps: [
      {
        policies: [
          policy("x", "allow-ports-81-9000", pod("a"), {
            ingress: [{ ports: [{ port: 81, endPort: 9000, protocol: "TCP" }] }],
          }),
        ],
        probes: [tcp(80, R().ingressTo("x/a", false)), tcp(81, R())],
      },
    ],
  },
  {
    name: "endPort together with a single port and a named port",
    steps: [
      {
        policies: [
          policy("x", "allow-mixed-ports", pod("a"), {
            ingress: [
              {
                from: [{ namespaceSelector: nsName("y") }],
                ports: [{ port: 70, endPort: 79 }, { port: "serve-81-tcp" }],
              },
            ],
          }),
        ],
        probes: [
          tcp(80, R().ingressTo("x/a", false)),
          tcp(
            81,
            R()
              .peers({ ns: "x" }, { ns: "x", pod: "a" }, false)
              .peers({ ns: "z" }, { ns: "x", pod: "a" }, false),
          ),
        ],
      },
    ],
  },
];

/** Convenience for tests: each (probe, from, to) triple of a step, loopback excluded. */
export function* probePairs(all: readonly PodName[], probe: Probe): Generator<[PodName, PodName, boolean]> {
  for (const from of all) for (const to of all) if (from !== to) yield [from, to, probe.expect.get(from, to)];
}
