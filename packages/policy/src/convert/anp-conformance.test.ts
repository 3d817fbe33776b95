/**
 * The AdminNetworkPolicy / BaselineAdminNetworkPolicy conformance scenarios of
 * kubernetes-sigs/network-policy-api (conformance/tests/*-core-*.go), re-encoded: four namespaces
 * ("houses") with two pods each serving TCP 80/8080, UDP 53/5353 and SCTP 9003/9005; each scenario is the
 * full set of policies at one moment and the connections that must (not) go through.
 */
import { describe, expect, it } from "vitest";
import { evaluateMirror } from "../calc/mirror-evaluate.js";
import { createCalcGraph } from "../calc/calc-graph.js";
import { createStreamMirror } from "../calc/stream-mirror.js";
import { createEvaluator } from "../eval/evaluator.js";
import { API_VERSION, checkResource, type WorkloadEndpoint } from "@margay/api";
import type { PolicyModelResource } from "../model/resources.js";
import {
  convertAdminNetworkPolicy,
  convertBaselineAdminNetworkPolicy,
  kubernetesTiers,
} from "./admin-network-policy.js";
import type {
  K8sAdminNetworkPolicy,
  K8sAdminPolicyRule,
  K8sBaselineAdminNetworkPolicy,
  K8sNetworkPolicy,
} from "./kubernetes-types.js";
import { convertNetworkPolicy } from "./network-policy.js";
import { convertNamespace } from "./profiles.js";

const HOUSES = {
  gryffindor: "harry-potter",
  hufflepuff: "cedric-diggory",
  ravenclaw: "luna-lovegood",
  slytherin: "draco-malfoy",
} as const;
type House = keyof typeof HOUSES;
const nsOf = (h: House) => `network-policy-conformance-${h}`;
type PodRef = `${House}-${0 | 1}`;

function podResource(ref: PodRef): WorkloadEndpoint {
  const [house, i] = ref.split("-") as [House, string];
  const name = `${HOUSES[house]}-${i}`;
  const houseIndex = Object.keys(HOUSES).indexOf(house) + 1;
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: {
      name: `node-k8s-${name}-eth0`,
      namespace: nsOf(house),
      labels: { "conformance-house": house, app: HOUSES[house], "projectcalico.org/orchestrator": "k8s" },
    },
    spec: {
      node: "node-1",
      interfaceName: `cali${house.slice(0, 4)}${i}`,
      ipNetworks: [`10.1.${houseIndex}.${Number(i) + 1}/32`],
      profiles: [`kns.${nsOf(house)}`],
      ports: [
        { name: "web", protocol: "TCP", port: 80 },
        { name: "web-alt", protocol: "TCP", port: 8080 },
        { name: "dns", protocol: "UDP", port: 53 },
        { name: "mdns", protocol: "UDP", port: 5353 },
        { name: "sctp-a", protocol: "SCTP", port: 9003 },
        { name: "sctp-b", protocol: "SCTP", port: 9005 },
      ],
    },
  };
}

const idOf = (ref: PodRef) => {
  const [house, i] = ref.split("-") as [House, string];
  return `${nsOf(house)}/node-k8s-${HOUSES[house]}-${i}-eth0`;
};

function baseWorld(): PolicyModelResource[] {
  const out: PolicyModelResource[] = [...kubernetesTiers()];
  for (const h of Object.keys(HOUSES) as House[]) {
    out.push(convertNamespace({ metadata: { name: nsOf(h), labels: { "conformance-house": h } } }));
    out.push(podResource(`${h}-0`), podResource(`${h}-1`));
  }
  return out;
}

const houseSel = (h: House) => ({ matchLabels: { "kubernetes.io/metadata.name": nsOf(h) } });
const toHouse = (
  h: House,
  action: K8sAdminPolicyRule["action"],
  ports?: K8sAdminPolicyRule["ports"],
  name?: string,
): K8sAdminPolicyRule => ({
  name,
  action,
  to: [{ namespaces: houseSel(h) }],
  ...(ports === undefined ? {} : { ports }),
});
const fromHouse = (
  h: House,
  action: K8sAdminPolicyRule["action"],
  ports?: K8sAdminPolicyRule["ports"],
): K8sAdminPolicyRule => ({
  action,
  from: [{ namespaces: { matchLabels: { "conformance-house": h } } }],
  ...(ports === undefined ? {} : { ports }),
});
const tcpPort = (port: number) => ({ portNumber: { protocol: "TCP" as const, port } });
const udpPort = (port: number) => ({ portNumber: { protocol: "UDP" as const, port } });

function anp(
  name: string,
  priority: number,
  subject: House,
  rules: { ingress?: K8sAdminPolicyRule[]; egress?: K8sAdminPolicyRule[] },
): K8sAdminNetworkPolicy {
  return {
    metadata: { name },
    spec: { priority, subject: { namespaces: { matchLabels: { "conformance-house": subject } } }, ...rules },
  };
}
function banp(
  subject: House,
  rules: { ingress?: K8sAdminPolicyRule[]; egress?: K8sAdminPolicyRule[] },
): K8sBaselineAdminNetworkPolicy {
  return {
    metadata: { name: "default" },
    spec: { subject: { namespaces: { matchLabels: { "conformance-house": subject } } }, ...rules },
  };
}

/** The `egress-tcp` ANP of the core egress TCP test, with its rules in the order given. */
function egressTcp(order: readonly number[]): K8sAdminNetworkPolicy {
  const rules = [
    toHouse("ravenclaw", "Allow"),
    toHouse("ravenclaw", "Deny"),
    toHouse("ravenclaw", "Pass"),
    toHouse("slytherin", "Deny", [tcpPort(80)]),
    toHouse("slytherin", "Pass", [tcpPort(80)]),
    toHouse("hufflepuff", "Allow", [tcpPort(8080)]),
    toHouse("hufflepuff", "Deny"),
  ];
  return anp("egress-tcp", 6, "gryffindor", { egress: order.map((i) => rules[i]!) });
}
const ORIGINAL = [0, 1, 2, 3, 4, 5, 6];
const swap = (i: number, j: number) => {
  const o = [...ORIGINAL];
  [o[i], o[j]] = [o[j]!, o[i]!];
  return o;
};

/** The NetworkPolicy and BANP of the api-integration manifest (core-anp-np-banp). */
const allowSlytherinNp: K8sNetworkPolicy = {
  metadata: { name: "allow-gress-from-to-slytherin-to-gryffindor", namespace: nsOf("gryffindor") },
  spec: {
    podSelector: {},
    policyTypes: ["Ingress", "Egress"],
    ingress: [{ from: [{ namespaceSelector: { matchLabels: { "conformance-house": "slytherin" } } }] }],
    egress: [{ to: [{ namespaceSelector: { matchLabels: { "conformance-house": "slytherin" } } }] }],
  },
};
const denySlytherinBanp = banp("gryffindor", {
  ingress: [fromHouse("slytherin", "Deny")],
  egress: [{ action: "Deny", to: [{ namespaces: { matchLabels: { "conformance-house": "slytherin" } } }] }],
});
const passExample = (ingress: "Deny" | "Pass", egress: "Deny" | "Pass") =>
  anp("pass-example", 10, "gryffindor", {
    ingress: [fromHouse("slytherin", ingress)],
    egress: [{ action: egress, to: [{ namespaces: { matchLabels: { "conformance-house": "slytherin" } } }] }],
  });

interface Conn {
  readonly from: PodRef;
  readonly to: PodRef;
  readonly protocol: "TCP" | "UDP" | "SCTP";
  readonly port: number;
  readonly allowed: boolean;
}
const c = (
  from: PodRef,
  to: PodRef,
  port: number,
  allowed: boolean,
  protocol: Conn["protocol"] = "TCP",
): Conn => ({ from, to, port, allowed, protocol });

interface Scenario {
  readonly name: string;
  readonly anps?: readonly K8sAdminNetworkPolicy[];
  readonly banp?: K8sBaselineAdminNetworkPolicy;
  readonly nps?: readonly K8sNetworkPolicy[];
  readonly conns: readonly Conn[];
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: "egress TCP: the first matching rule (Allow) wins over later Deny/Pass",
    anps: [egressTcp(ORIGINAL)],
    conns: [c("gryffindor-0", "ravenclaw-0", 80, true), c("gryffindor-1", "ravenclaw-0", 8080, true)],
  },
  {
    name: "egress TCP: Allow at port 8080, Deny for the rest of hufflepuff",
    anps: [egressTcp(ORIGINAL)],
    conns: [c("gryffindor-0", "hufflepuff-1", 8080, true), c("gryffindor-1", "hufflepuff-1", 80, false)],
  },
  {
    name: "egress TCP: swapping Allow and Deny makes Deny win",
    anps: [egressTcp(swap(0, 1))],
    conns: [c("gryffindor-0", "ravenclaw-1", 80, false), c("gryffindor-1", "ravenclaw-1", 8080, false)],
  },
  {
    name: "egress TCP: Deny at port 80 only; other ports match nothing and stay open",
    anps: [egressTcp(ORIGINAL)],
    conns: [c("gryffindor-0", "slytherin-0", 80, false), c("gryffindor-1", "slytherin-0", 8080, true)],
  },
  {
    name: "egress TCP: Pass first hands the decision on (no NP, no BANP: allowed)",
    anps: [egressTcp(swap(0, 2))],
    conns: [c("gryffindor-0", "ravenclaw-0", 80, true), c("gryffindor-1", "ravenclaw-0", 8080, true)],
  },
  {
    name: "egress TCP: Pass at port 80 before Deny",
    anps: [egressTcp(swap(3, 4))],
    conns: [c("gryffindor-0", "slytherin-0", 80, true), c("gryffindor-1", "slytherin-0", 8080, true)],
  },
  {
    name: "egress TCP: the ANP only restricts its subject",
    anps: [egressTcp(ORIGINAL)],
    conns: [c("ravenclaw-0", "hufflepuff-0", 80, true), c("slytherin-1", "hufflepuff-0", 80, true)],
  },
  {
    name: "integration: ANP Deny beats a NetworkPolicy that allows",
    anps: [passExample("Deny", "Deny")],
    nps: [allowSlytherinNp],
    banp: denySlytherinBanp,
    conns: [
      c("slytherin-0", "gryffindor-0", 80, false),
      c("slytherin-1", "gryffindor-0", 8080, false),
      c("gryffindor-0", "slytherin-0", 80, false),
      c("gryffindor-1", "slytherin-0", 8080, false),
    ],
  },
  {
    name: "integration: ANP Pass (ingress) defers to the NetworkPolicy's Allow",
    anps: [passExample("Pass", "Deny")],
    nps: [allowSlytherinNp],
    banp: denySlytherinBanp,
    conns: [c("slytherin-0", "gryffindor-0", 80, true), c("slytherin-1", "gryffindor-0", 8080, true)],
  },
  {
    name: "integration: ANP Pass (egress) defers to the NetworkPolicy's Allow",
    anps: [passExample("Pass", "Pass")],
    nps: [allowSlytherinNp],
    banp: denySlytherinBanp,
    conns: [c("gryffindor-0", "slytherin-0", 80, true), c("gryffindor-1", "slytherin-0", 8080, true)],
  },
  {
    name: "integration: with the NetworkPolicy gone, ANP Pass reaches the BANP Deny",
    anps: [passExample("Pass", "Pass")],
    banp: denySlytherinBanp,
    conns: [
      c("slytherin-0", "gryffindor-0", 80, false),
      c("slytherin-1", "gryffindor-0", 8080, false),
      c("gryffindor-0", "slytherin-0", 80, false),
      c("gryffindor-1", "slytherin-0", 8080, false),
    ],
  },
  {
    name: "integration: a NetworkPolicy isolating gryffindor stops traffic before the BANP is reached",
    nps: [
      {
        metadata: { name: "allow-from-ravenclaw-only", namespace: nsOf("gryffindor") },
        spec: {
          podSelector: {},
          ingress: [{ from: [{ namespaceSelector: { matchLabels: { "conformance-house": "ravenclaw" } } }] }],
        },
      },
    ],
    banp: banp("gryffindor", { ingress: [fromHouse("hufflepuff", "Allow")] }),
    conns: [c("hufflepuff-0", "gryffindor-0", 80, false), c("ravenclaw-0", "gryffindor-0", 80, true)],
  },
  {
    name: "priority: the lower number (50, Deny) wins over 60 (Pass)",
    anps: [
      anp("priority-50-example", 50, "gryffindor", {
        ingress: [fromHouse("slytherin", "Deny")],
        egress: [toHouse("slytherin", "Deny")],
      }),
      anp("old-priority-60-new-priority-40-example", 60, "gryffindor", {
        ingress: [fromHouse("slytherin", "Pass")],
        egress: [toHouse("slytherin", "Pass")],
      }),
    ],
    banp: banp("gryffindor", {
      ingress: [fromHouse("slytherin", "Allow")],
      egress: [toHouse("slytherin", "Allow")],
    }),
    conns: [
      c("slytherin-0", "gryffindor-0", 80, false),
      c("slytherin-1", "gryffindor-0", 8080, false),
      c("gryffindor-0", "slytherin-0", 80, false),
      c("gryffindor-1", "slytherin-0", 8080, false),
    ],
  },
  {
    name: "priority: moving the Pass policy to 40 hands both directions to the BANP Allow",
    anps: [
      anp("priority-50-example", 50, "gryffindor", {
        ingress: [fromHouse("slytherin", "Deny")],
        egress: [toHouse("slytherin", "Deny")],
      }),
      anp("old-priority-60-new-priority-40-example", 40, "gryffindor", {
        ingress: [fromHouse("slytherin", "Pass")],
        egress: [toHouse("slytherin", "Pass")],
      }),
    ],
    banp: banp("gryffindor", {
      ingress: [fromHouse("slytherin", "Allow")],
      egress: [toHouse("slytherin", "Allow")],
    }),
    conns: [
      c("slytherin-0", "gryffindor-0", 80, true),
      c("slytherin-1", "gryffindor-0", 8080, true),
      c("gryffindor-0", "slytherin-0", 80, true),
      c("gryffindor-1", "slytherin-0", 8080, true),
    ],
  },
  {
    name: "ingress UDP: Allow at 53, Deny the rest of the protocol-specific traffic",
    anps: [
      anp("ingress-udp", 3, "slytherin", {
        ingress: [
          fromHouse("hufflepuff", "Allow", [udpPort(53)]),
          fromHouse("hufflepuff", "Deny", [udpPort(5353), udpPort(53)]),
        ],
      }),
    ],
    conns: [
      c("hufflepuff-0", "slytherin-0", 53, true, "UDP"),
      c("hufflepuff-1", "slytherin-0", 5353, false, "UDP"),
      c("hufflepuff-1", "slytherin-0", 80, true, "TCP"),
    ],
  },
  {
    name: "ingress SCTP: Deny at 9003 only",
    anps: [
      anp("ingress-sctp", 4, "ravenclaw", {
        ingress: [fromHouse("gryffindor", "Deny", [{ portNumber: { protocol: "SCTP", port: 9003 } }])],
      }),
    ],
    conns: [
      c("gryffindor-0", "ravenclaw-0", 9003, false, "SCTP"),
      c("gryffindor-0", "ravenclaw-0", 9005, true, "SCTP"),
    ],
  },
  {
    name: "named and ranged ports in ANP rules",
    anps: [
      anp("ports", 7, "hufflepuff", {
        ingress: [
          fromHouse("ravenclaw", "Allow", [{ namedPort: "web-alt" }]),
          fromHouse("ravenclaw", "Deny", [{ portRange: { protocol: "TCP", start: 1, end: 9000 } }]),
        ],
      }),
    ],
    conns: [
      c("ravenclaw-0", "hufflepuff-0", 8080, true),
      c("ravenclaw-0", "hufflepuff-0", 80, false),
      c("ravenclaw-0", "hufflepuff-0", 9003, true, "SCTP"),
    ],
  },
  {
    name: "BANP egress: rule order (Allow before Deny) and port-specific Deny",
    banp: banp("gryffindor", {
      egress: [
        toHouse("ravenclaw", "Allow"),
        toHouse("ravenclaw", "Deny"),
        toHouse("slytherin", "Deny", [tcpPort(80)]),
      ],
    }),
    conns: [
      c("gryffindor-0", "ravenclaw-0", 80, true),
      c("gryffindor-0", "slytherin-0", 80, false),
      c("gryffindor-0", "slytherin-0", 8080, true),
    ],
  },
  {
    name: "egress to networks (CIDR peers)",
    anps: [
      anp("egress-cidr", 8, "gryffindor", {
        egress: [
          { action: "Allow", to: [{ networks: ["10.1.4.1/32"] }] },
          { action: "Deny", to: [{ networks: ["10.1.0.0/16"] }] },
        ],
      }),
    ],
    conns: [
      c("gryffindor-0", "slytherin-0", 80, true),
      c("gryffindor-0", "slytherin-1", 80, false),
      c("gryffindor-0", "ravenclaw-0", 53, false, "UDP"),
    ],
  },
];

/** Every rule of the scenarios must convert: a silently dropped rule would make a scenario meaningless. */
const strict = {
  onInvalidRule: (e: unknown) => {
    throw e;
  },
};

describe("AdminNetworkPolicy conformance scenarios (conversion + reference evaluator + calc graph)", () => {
  it("has at least 10 scenarios", () => {
    expect(SCENARIOS.length).toBeGreaterThanOrEqual(10);
  });

  for (const s of SCENARIOS) {
    it(s.name, () => {
      const resources: PolicyModelResource[] = [
        ...baseWorld(),
        ...(s.anps ?? []).map((a) => convertAdminNetworkPolicy(a, strict)),
        ...(s.banp === undefined ? [] : [convertBaselineAdminNetworkPolicy(s.banp, strict)]),
        ...(s.nps ?? []).map((p) => convertNetworkPolicy(p, strict)),
      ];
      const evaluator = createEvaluator(resources);
      const graph = createCalcGraph();
      for (const r of resources) graph.upsert(r);
      graph.markInSync();
      const mirror = createStreamMirror();
      mirror.apply(graph.flush());
      for (const conn of s.conns) {
        const ev = evaluator.evaluate({
          source: { workload: idOf(conn.from) },
          destination: { workload: idOf(conn.to) },
          protocol: conn.protocol,
          srcPort: 33000,
          dstPort: conn.port,
        });
        const label = `${conn.from} -> ${conn.to} ${conn.protocol}/${conn.port}`;
        expect(ev.verdict === "allow", `${label}\n${ev.explanation}`).toBe(conn.allowed);
        const src = podResource(conn.from).spec.ipNetworks![0]!.split("/")[0]!;
        const dst = podResource(conn.to).spec.ipNetworks![0]!.split("/")[0]!;
        const wire = evaluateMirror(mirror, {
          srcIp: src,
          dstIp: dst,
          protocol: conn.protocol,
          srcPort: 33000,
          dstPort: conn.port,
        });
        expect(wire === "allow", `calc graph: ${label}`).toBe(conn.allowed);
      }
    });
  }

  it("names and orders converted policies as Calico does", () => {
    const g = convertAdminNetworkPolicy(egressTcp(ORIGINAL));
    expect(g.metadata.name).toBe("kanp.adminnetworkpolicy.egress-tcp");
    expect(g.spec.tier).toBe("adminnetworkpolicy");
    expect(g.spec.order).toBe(6);
    const b = convertBaselineAdminNetworkPolicy(denySlytherinBanp);
    expect(b.metadata.name).toBe("kbanp.baselineadminnetworkpolicy.default");
    expect(b.spec.tier).toBe("baselineadminnetworkpolicy");
    expect(b.spec.order).toBe(1000);
    expect(kubernetesTiers().map((t) => [t.metadata.name, t.spec.order, t.spec.defaultAction])).toEqual([
      ["adminnetworkpolicy", 1000, "Pass"],
      ["default", 1_000_000, "Deny"],
      ["baselineadminnetworkpolicy", 10_000_000, "Pass"],
    ]);
  });

  it("fails closed on a rule it cannot convert: a failed Allow is dropped, a failed Deny or Pass denies all", () => {
    const nodes = [{ nodes: { matchLabels: { a: "b" } } }];
    const errors: unknown[] = [];
    const report = { onInvalidRule: (e: unknown) => errors.push(e) };
    const judge = (policy: K8sAdminNetworkPolicy, to: PodRef, port: number) =>
      createEvaluator([...baseWorld(), convertAdminNetworkPolicy(policy, report)]).evaluate({
        source: { workload: idOf("gryffindor-0") },
        destination: { workload: idOf(to) },
        protocol: "TCP",
        srcPort: 33000,
        dstPort: port,
      }).verdict;
    // A failed Deny must not vanish with its policy: it denies everything the subject sends.
    const failedDeny = anp("n", 1, "gryffindor", {
      egress: [{ action: "Deny", to: nodes }, toHouse("ravenclaw", "Allow")],
    });
    expect(convertAdminNetworkPolicy(failedDeny, report).spec.egress).toEqual([
      { action: "Deny" },
      { action: "Allow", destination: expect.objectContaining({ namespaceSelector: expect.any(String) }) },
    ]);
    expect(judge(failedDeny, "ravenclaw-0", 80)).toBe("deny");
    expect(judge(failedDeny, "slytherin-0", 80)).toBe("deny");
    // A failed Pass could skip a later Deny: it denies too.
    const failedPass = anp("n", 1, "gryffindor", { egress: [{ action: "Pass", to: nodes }] });
    expect(judge(failedPass, "hufflepuff-0", 80)).toBe("deny");
    // A failed Allow is dropped: the rest of the policy still applies.
    const failedAllow = anp("n", 1, "gryffindor", {
      egress: [{ action: "Allow", to: nodes }, toHouse("slytherin", "Deny")],
    });
    expect(convertAdminNetworkPolicy(failedAllow, report).spec.egress).toHaveLength(1);
    expect(judge(failedAllow, "slytherin-0", 80)).toBe("deny");
    expect(judge(failedAllow, "hufflepuff-0", 80)).toBe("allow");
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => (e as { code?: string }).code === "unsupported")).toBe(true);
    // Without a listener the conversion is just as closed, and silent; the result is a valid resource.
    const silent = convertAdminNetworkPolicy(failedDeny);
    expect(silent.spec.egress?.[0]).toEqual({ action: "Deny" });
    expect(checkResource(silent).ok).toBe(true);
  });

  it("rejects what leaves a policy's targets unknown or the API forbids, with typed errors", () => {
    expect(() =>
      convertBaselineAdminNetworkPolicy(banp("gryffindor", { ingress: [fromHouse("slytherin", "Pass")] })),
    ).toThrow(expect.objectContaining({ code: "invalid-input" }));
    expect(() => convertAdminNetworkPolicy(anp("p", 1001, "gryffindor", {}))).toThrow(
      expect.objectContaining({ code: "invalid-input" }),
    );
    expect(() =>
      convertAdminNetworkPolicy({ metadata: { name: "s" }, spec: { priority: 1, subject: {} } }),
    ).toThrow(expect.objectContaining({ code: "invalid-input" }));
  });
});
