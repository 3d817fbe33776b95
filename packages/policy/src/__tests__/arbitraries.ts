/** fast-check generators of labels, selectors and whole policy models, shared by the property tests. */
import fc from "fast-check";
import { API_VERSION, type EntityRule, type Rule } from "@margay/api";
import type { PolicyModelResource, ResourceKey } from "../model/resources.js";

/** A resource under construction: optional fields may still be `undefined`. */
type Draft = { readonly kind: PolicyModelResource["kind"]; readonly metadata: object; readonly spec: object };

/** Drops `undefined` fields (absent, as in a parsed manifest) and stamps the apiVersion. */
function toResource(d: Draft): PolicyModelResource {
  return JSON.parse(JSON.stringify({ apiVersion: API_VERSION, ...d })) as PolicyModelResource;
}

export const LABEL_KEYS = ["app", "tier", "env", "role"] as const;
export const LABEL_VALUES = ["a", "b", "c"] as const;

export const labelsArb: fc.Arbitrary<Record<string, string>> = fc.dictionary(
  fc.constantFrom(...LABEL_KEYS),
  fc.constantFrom(...LABEL_VALUES),
  { maxKeys: 4 },
);

const key = fc.constantFrom(...LABEL_KEYS);
const value = fc.constantFrom(...LABEL_VALUES);
const q = (s: string) => `"${s}"`;

const termArb: fc.Arbitrary<string> = fc.oneof(
  fc.tuple(key, value).map(([k, v]) => `${k} == ${q(v)}`),
  fc.tuple(key, value).map(([k, v]) => `${k} != ${q(v)}`),
  key.map((k) => `has(${k})`),
  key.map((k) => `!has(${k})`),
  fc
    .tuple(key, fc.uniqueArray(value, { minLength: 0, maxLength: 3 }))
    .map(([k, vs]) => `${k} in {${vs.map(q).join(", ")}}`),
  fc
    .tuple(key, fc.uniqueArray(value, { minLength: 1, maxLength: 2 }))
    .map(([k, vs]) => `${k} not in {${vs.map(q).join(", ")}}`),
  fc.tuple(key, value).map(([k, v]) => `${k} starts with ${q(v)}`),
  fc.constant("all()"),
);

/** Random selector text over {@link LABEL_KEYS}: terms combined with `&&`, `||`, `!` and parentheses. */
export const selectorArb: fc.Arbitrary<string> = fc.letrec<{ sel: string }>((tie) => ({
  sel: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    termArb,
    fc.tuple(tie("sel"), tie("sel")).map(([a, b]) => `(${a}) && (${b})`),
    fc.tuple(tie("sel"), tie("sel")).map(([a, b]) => `(${a}) || (${b})`),
    tie("sel").map((a) => `!(${a})`),
  ),
})).sel;

// ---- policy models ---------------------------------------------------------------------------------

export const NAMESPACES = ["ns1", "ns2"] as const;
export const WORKLOADS = 6;
export const HOSTS = 2;

const protocolArb = fc.constantFrom<Rule["protocol"]>("TCP", "UDP", "ICMP", 132, undefined);
const portsArb = fc.array(fc.constantFrom<string | number>(80, 443, "8000:8100", "http", "dns"), {
  maxLength: 2,
});
const simpleSelArb = fc.constantFrom(
  "app == 'a'",
  "tier in {'a', 'b'}",
  "has(env)",
  "role != 'c'",
  "all()",
  "app == 'b' && has(tier)",
);

const entityArb: fc.Arbitrary<EntityRule> = fc.record(
  {
    selector: simpleSelArb,
    notSelector: simpleSelArb,
    namespaceSelector: fc.constantFrom("team == 'red'", "all()", "global()", "team != 'red'"),
    nets: fc.array(
      fc.constantFrom("10.0.0.0/24", "10.0.1.0/24", "10.9.0.0/16", "192.168.0.0/16", "0.0.0.0/0"),
      { maxLength: 2 },
    ),
    notNets: fc.array(fc.constantFrom("10.0.0.0/28", "10.0.1.2/32"), { maxLength: 1 }),
    ports: portsArb,
    notPorts: fc.array(fc.constantFrom<string | number>(443, "http"), { maxLength: 1 }),
    serviceAccounts: fc.record(
      {
        names: fc.array(fc.constantFrom("sa1", "sa2"), { maxLength: 2 }),
        selector: fc.constantFrom("", "owner == 'x'"),
      },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);

const ruleArb: fc.Arbitrary<Rule> = fc
  .record(
    {
      action: fc.constantFrom<Rule["action"]>("Allow", "Deny", "Pass", "Log", "Allow", "Deny"),
      protocol: protocolArb,
      notProtocol: fc.constantFrom<Rule["notProtocol"]>("UDP", undefined, undefined),
      ipVersion: fc.constantFrom<Rule["ipVersion"]>(4, 6, undefined, undefined),
      source: entityArb,
      destination: entityArb,
      icmp: fc.constantFrom<Rule["icmp"]>(undefined, undefined, { type: 8 }, { type: 3, code: 1 }),
    },
    { requiredKeys: ["action"] },
  )
  .map((r) => {
    // Keep most generated rules valid (ports only with a port protocol, icmp only with ICMP); some stay
    // invalid on purpose, and must fail closed identically everywhere.
    const out: Record<string, unknown> = { ...r };
    if (r.protocol === "ICMP") {
      if (r.source !== undefined) out.source = { ...r.source, ports: undefined, notPorts: undefined };
      if (r.destination !== undefined)
        out.destination = { ...r.destination, ports: undefined, notPorts: undefined };
    } else if (r.icmp !== undefined && JSON.stringify(r).length % 5 !== 0) out.icmp = undefined;
    return JSON.parse(JSON.stringify(out)) as Rule;
  });

const rulesArb = fc.array(ruleArb, { maxLength: 3 });
const typesArb = fc.constantFrom<("Ingress" | "Egress")[] | undefined>(
  undefined,
  ["Ingress"],
  ["Egress"],
  ["Ingress", "Egress"],
);
const tierNameArb = fc.constantFrom("default", "security", "missing-tier", undefined);
const orderArb = fc.constantFrom(1, 2, 100, undefined);

function wepArb(i: number): fc.Arbitrary<Draft> {
  return fc
    .record({
      ns: fc.constantFrom(...NAMESPACES),
      labels: labelsArb,
      node: fc.constantFrom("n1", "n1", "n2"),
      subnet: fc.constantFrom(0, 1),
      sa: fc.constantFrom("sa1", "sa2", undefined),
      // Lists its namespace profile twice now and then (refcounts must count distinct profiles).
      repeatProfile: fc.constantFrom(false, false, false, true),
      dualStack: fc.boolean(),
      ports: fc.array(
        fc.record({
          name: fc.constantFrom("http", "dns"),
          protocol: fc.constantFrom("TCP", "UDP"),
          port: fc.constantFrom(80, 8080, 53),
        }),
        { maxLength: 2 },
      ),
    })
    .map(
      ({ ns, labels, node, subnet, sa, repeatProfile, dualStack, ports }): Draft => ({
        kind: "WorkloadEndpoint",
        metadata: { name: `w${i}`, namespace: ns, labels },
        spec: {
          node,
          interfaceName: `cali${i}`,
          // Unique per (namespace, name): two endpoints never share an address.
          ipNetworks: [
            `10.0.${subnet * 2 + NAMESPACES.indexOf(ns)}.${i + 1}/32`,
            ...(dualStack ? [`fd00::${subnet * 2 + NAMESPACES.indexOf(ns)}:${i + 1}/128`] : []),
          ],
          profiles: [
            `kns.${ns}`,
            ...(sa === undefined ? [] : [`ksa.${ns}.${sa}`]),
            ...(repeatProfile ? [`kns.${ns}`] : []),
          ],
          serviceAccountName: sa,
          ports,
        },
      }),
    );
}

const resourceArbs: fc.Arbitrary<Draft>[] = [
  ...Array.from({ length: WORKLOADS }, (_, i) => wepArb(i)),
  ...Array.from({ length: HOSTS }, (_, i) =>
    fc
      .record({
        labels: labelsArb,
        node: fc.constantFrom("n1", "n2"),
        // Host endpoints define named ports too: their IP+port members must follow changes.
        ports: fc.array(
          fc.record({
            name: fc.constantFrom("http", "dns"),
            protocol: fc.constantFrom("TCP", "UDP"),
            port: fc.constantFrom(80, 53, 8050),
          }),
          { maxLength: 1 },
        ),
      })
      .map(
        ({ labels, node, ports }): Draft => ({
          kind: "HostEndpoint",
          metadata: { name: `h${i}`, labels },
          spec: {
            node,
            interfaceName: `eth${i}`,
            expectedIPs: [`10.9.0.${i + 1}`],
            profiles: i === 0 ? [] : ["host-profile"],
            ports,
          },
        }),
      ),
  ),
  ...NAMESPACES.map((ns) =>
    fc.record({ team: fc.constantFrom("red", "blue") }).map(
      ({ team }): Draft => ({
        kind: "Profile",
        metadata: { name: `kns.${ns}` },
        spec: {
          ingress: [{ action: "Allow" }],
          egress: [{ action: "Allow" }],
          labelsToApply: { "pcns.team": team, "pcns.projectcalico.org/name": ns },
        },
      }),
    ),
  ),
  ...NAMESPACES.flatMap((ns) =>
    ["sa1", "sa2"].map((sa) =>
      fc.record({ owner: fc.constantFrom("x", "y") }).map(
        ({ owner }): Draft => ({
          kind: "Profile",
          metadata: { name: `ksa.${ns}.${sa}` },
          spec: { labelsToApply: { "pcsa.owner": owner, "pcsa.projectcalico.org/name": sa } },
        }),
      ),
    ),
  ),
  fc.record({ ingress: rulesArb, egress: rulesArb }).map(
    ({ ingress, egress }): Draft => ({
      kind: "Profile",
      metadata: { name: "host-profile" },
      spec: { ingress, egress },
    }),
  ),
  fc.record({ order: orderArb, defaultAction: fc.constantFrom<"Deny" | "Pass">("Deny", "Pass") }).map(
    ({ order, defaultAction }): Draft => ({
      kind: "Tier",
      metadata: { name: "security" },
      spec: { order, defaultAction },
    }),
  ),
  ...Array.from({ length: 3 }, (_, i) =>
    fc
      .record({
        ns: fc.constantFrom(...NAMESPACES),
        tier: tierNameArb,
        order: orderArb,
        selector: simpleSelArb,
        // Selected through the service-account profile's inherited pcsa. labels.
        serviceAccountSelector: fc.constantFrom(undefined, undefined, "owner == 'x'"),
        types: typesArb,
        ingress: rulesArb,
        egress: rulesArb,
      })
      .map(
        ({ ns, tier, order, selector, serviceAccountSelector, types, ingress, egress }): Draft => ({
          kind: "NetworkPolicy",
          metadata: { name: `np${i}`, namespace: ns },
          spec: { tier, order, selector, serviceAccountSelector, types, ingress, egress },
        }),
      ),
  ),
  ...Array.from({ length: 3 }, (_, i) =>
    fc
      .record({
        tier: tierNameArb,
        order: orderArb,
        selector: simpleSelArb,
        namespaceSelector: fc.constantFrom(undefined, "team == 'red'", "global()"),
        types: typesArb,
        ingress: rulesArb,
        egress: rulesArb,
        host: fc.constantFrom<undefined | "doNotTrack" | "preDNAT" | "applyOnForward">(
          undefined,
          undefined,
          "doNotTrack",
          "preDNAT",
          "applyOnForward",
        ),
      })
      .map(
        ({ tier, order, selector, namespaceSelector, types, ingress, egress, host }): Draft => ({
          kind: "GlobalNetworkPolicy",
          metadata: { name: `gnp${i}` },
          spec: {
            tier,
            order,
            selector,
            namespaceSelector,
            types: host === "preDNAT" ? ["Ingress"] : types,
            ingress,
            egress: host === "preDNAT" ? [] : egress,
            ...(host === undefined ? {} : { [host]: true, applyOnForward: true }),
          },
        }),
      ),
  ),
  fc
    .record({
      labels: labelsArb,
      nets: fc.array(fc.constantFrom("10.0.0.0/28", "172.16.0.0/12", "10.0.1.5/32"), { maxLength: 2 }),
    })
    .map(
      ({ labels, nets }): Draft => ({
        kind: "GlobalNetworkSet",
        metadata: { name: "gns0", labels },
        spec: { nets },
      }),
    ),
  fc
    .record({
      ns: fc.constantFrom(...NAMESPACES),
      labels: labelsArb,
      nets: fc.array(fc.constantFrom("10.0.0.16/28", "10.0.1.0/30"), { maxLength: 2 }),
    })
    .map(
      ({ ns, labels, nets }): Draft => ({
        kind: "NetworkSet",
        metadata: { name: "ns0", namespace: ns, labels },
        spec: { nets },
      }),
    ),
];

/** One random resource of the small universe (keys collide on purpose, so upserts replace). */
export const resourceArb: fc.Arbitrary<PolicyModelResource> = fc.oneof(...resourceArbs).map(toResource);

/** An operation on the model. */
export type ModelOp =
  | { readonly op: "upsert"; readonly resource: PolicyModelResource }
  | { readonly op: "remove"; readonly index: number }
  | { readonly op: "flush" };

/** Random operation sequences: upserts, removals of a previously upserted key, and flushes. */
export const opsArb: fc.Arbitrary<ModelOp[]> = fc.array(
  fc.oneof(
    { weight: 6, arbitrary: resourceArb.map((resource): ModelOp => ({ op: "upsert", resource })) },
    { weight: 2, arbitrary: fc.nat(50).map((index): ModelOp => ({ op: "remove", index })) },
    { weight: 1, arbitrary: fc.constant<ModelOp>({ op: "flush" }) },
  ),
  { minLength: 1, maxLength: 60 },
);

/** Applies `ops` to a key → resource map, returning the keys removed in order (for replay). */
export function finalState(
  ops: readonly ModelOp[],
  keyString: (r: PolicyModelResource) => string,
  onOp?: (op: { upsert?: PolicyModelResource; remove?: ResourceKey; flush?: true }) => void,
  keyOf?: (r: PolicyModelResource) => ResourceKey,
): Map<string, PolicyModelResource> {
  const state = new Map<string, PolicyModelResource>();
  for (const op of ops) {
    if (op.op === "upsert") {
      state.set(keyString(op.resource), op.resource);
      onOp?.({ upsert: op.resource });
    } else if (op.op === "remove") {
      const keys = [...state.keys()];
      if (keys.length === 0) continue;
      const k = keys[op.index % keys.length]!;
      const r = state.get(k)!;
      state.delete(k);
      if (keyOf !== undefined) onOp?.({ remove: keyOf(r) });
    } else onOp?.({ flush: true });
  }
  return state;
}
