import { describe, expect, expectTypeOf, it } from "vitest";
import {
  checkResource,
  type IPPool,
  isIPPool,
  isNetworkPolicy,
  isValidationError,
  KIND_INFO,
  type ObjectMeta,
  RESOURCE_KINDS,
  type Resource,
  type ResourceOfKind,
  type ValidationError,
  validateResource,
  withDefaults,
} from "../index.js";
import { validExamples } from "./fixtures.js";

const clone = <T>(x: T): T => structuredClone(x);

/** Issues of a failed validation, as "path: message" strings. */
function issuesOf(input: unknown): string[] {
  const r = checkResource(input);
  if (r.ok) return [];
  return r.issues.map((i) => `${i.path}: ${i.message}`);
}

// biome-ignore lint/suspicious/noExplicitAny: test edits poke at arbitrary JSON paths of the examples.
type Json = any;

/** Applies `edit` to a copy of the named example. */
function edited(name: string, edit: (r: Json) => void): unknown {
  const r = clone(validExamples[name]!);
  edit(r);
  return r;
}

describe("valid examples", () => {
  for (const [name, example] of Object.entries(validExamples)) {
    it(`${name} validates`, () => {
      expect(issuesOf(example)).toEqual([]);
      const r = validateResource(example);
      expect(r.kind).toBe(example.kind);
      // Validation is idempotent on its own output, and so are defaults.
      expect(validateResource(r)).toEqual(r);
      const d = withDefaults(r);
      expect(validateResource(d)).toEqual(d);
      expect(withDefaults(d)).toEqual(d);
    });
  }

  it("covers every kind", () => {
    const kinds = new Set(Object.values(validExamples).map((e) => e.kind));
    expect([...kinds].sort()).toEqual([...RESOURCE_KINDS].sort());
  });
});

describe("canonicalisation", () => {
  it("canonicalises addresses, ports, protocols and AS numbers", () => {
    const np = validateResource(
      edited("NetworkPolicy", (r) => {
        r.spec.ingress[0].protocol = "tcp";
        r.spec.ingress[0].destination.ports = ["80", "90:90", "1000:2000", "http"];
        r.spec.ingress[2].source.nets = ["192.168.0.0/16", "10.0.0.1"];
      }),
    );
    if (!isNetworkPolicy(np)) throw new Error("kind");
    expect(np.spec.ingress?.[0]?.protocol).toBe("TCP");
    expect(np.spec.ingress?.[0]?.destination?.ports).toEqual([80, 90, "1000:2000", "http"]);
    expect(np.spec.ingress?.[2]?.source?.nets).toEqual(["192.168.0.0/16", "10.0.0.1/32"]);

    const peer = validateResource(validExamples.BGPPeer);
    expect(peer.spec).toMatchObject({ asNumber: 65546, peerIP: "192.168.1.1:1179" });

    const wep = validateResource(
      edited("WorkloadEndpoint", (r) => {
        r.spec.ipNetworks = ["FD00:10:244:0:0:0:0:5/128", "10.244.3.5"];
        r.spec.mac = "EE-EE-EE-EE-EE-EE";
      }),
    );
    expect(wep.spec).toMatchObject({
      ipNetworks: ["fd00:10:244::5/128", "10.244.3.5/32"],
      mac: "ee:ee:ee:ee:ee:ee",
    });
  });

  it("masks host bits where Calico allows them, and says where it does not", () => {
    const res = validateResource(edited("IPReservation", (r) => (r.spec.reservedCIDRs = ["10.0.0.5/24"])));
    expect(res.spec).toEqual({ reservedCIDRs: ["10.0.0.0/24"] });
    expect(issuesOf(edited("IPPool", (r) => (r.spec.cidr = "10.244.1.0/16")))).toEqual([
      'spec.cidr: CIDR "10.244.1.0/16" is not strictly masked (network address is 10.244.0.0/16)',
    ]);
  });
});

/** [example, edit, expected issue paths (exactly)]. */
const invalid: [string, string, (r: Json) => void, string[]][] = [
  ["Profile", "bad rule action", (r) => (r.spec.egress[0].action = "allow"), ["spec.egress[0].action"]],
  [
    "Profile",
    "bad label to apply",
    (r) => (r.spec.labelsToApply["bad key!"] = "x"),
    ['spec.labelsToApply["bad key!"]'],
  ],
  ["Profile", "namespace on a cluster kind", (r) => (r.metadata.namespace = "prod"), ["metadata.namespace"]],
  ["IPPool", "missing cidr", (r) => delete r.spec.cidr, ["spec.cidr"]],
  ["IPPool", "garbage cidr", (r) => (r.spec.cidr = "10.0.0.0/33"), ["spec.cidr"]],
  ["IPPool", "v4 block size too small", (r) => (r.spec.blockSize = 19), ["spec.blockSize"]],
  ["IPPool", "v4 block size too large", (r) => (r.spec.blockSize = 33), ["spec.blockSize"]],
  ["IPPool6", "v6 block size 26", (r) => (r.spec.blockSize = 26), ["spec.blockSize"]],
  ["IPPool", "pool smaller than block", (r) => (r.spec.cidr = "10.0.0.0/28"), ["spec.cidr"]],
  ["IPPool", "link-local", (r) => (r.spec.cidr = "169.254.0.0/16"), ["spec.cidr"]],
  ["IPPool6", "ipip on v6", (r) => (r.spec.ipipMode = "Always"), ["spec.ipipMode"]],
  ["IPPool", "ipip and vxlan", (r) => (r.spec.ipipMode = "Always"), ["spec.ipipMode"]],
  ["IPPool", "bad mode", (r) => (r.spec.vxlanMode = "always"), ["spec.vxlanMode"]],
  ["IPPool", "bad selector", (r) => (r.spec.nodeSelector = "zone = 'a'"), ["spec.nodeSelector"]],
  ["IPPool", "unknown field", (r) => (r.spec.ipip = { enabled: true }), ["spec.ipip"]],
  [
    "IPPool",
    "LB mixed uses",
    (r) => (r.spec.allowedUses = ["LoadBalancer", "Workload"]),
    ["spec.allowedUses", "spec.allowedUses", "spec.nodeSelector"],
  ],
  ["IPPool", "bad use", (r) => (r.spec.allowedUses = ["Pods"]), ["spec.allowedUses[0]"]],
  ["IPPool", "namespace on cluster kind", (r) => (r.metadata.namespace = "x"), ["metadata.namespace"]],
  ["IPPool", "bad name", (r) => (r.metadata.name = "Pool_A"), ["metadata.name"]],
  ["IPPool", "bad label key", (r) => (r.metadata.labels = { "-x": "y" }), ['metadata.labels["-x"]']],
  ["IPPool", "wrong apiVersion", (r) => (r.apiVersion = "projectcalico.org/v3"), ["apiVersion"]],
  ["IPPool", "extra top-level field", (r) => (r.status = {}), ["status"]],
  ["IPAMConfig", "not named default", (r) => (r.metadata.name = "other"), ["metadata.name"]],
  ["IPAMConfig", "negative max blocks", (r) => (r.spec.maxBlocksPerHost = -1), ["spec.maxBlocksPerHost"]],
  [
    "IPReservation",
    "bad cidr",
    (r) => (r.spec.reservedCIDRs = ["10.0.0.0/8", "x"]),
    ["spec.reservedCIDRs[1]"],
  ],
  [
    "Node",
    "v6 address in ipv4Address",
    (r) => (r.spec.bgp.ipv4Address = "fd00::1/64"),
    ["spec.bgp.ipv4Address"],
  ],
  ["Node", "bad AS", (r) => (r.spec.bgp.asNumber = 4294967296), ["spec.bgp.asNumber"]],
  ["Node", "bad address type", (r) => (r.spec.addresses[0].type = "Public"), ["spec.addresses[0].type"]],
  ["WorkloadEndpoint", "missing namespace", (r) => delete r.metadata.namespace, ["metadata.namespace"]],
  ["WorkloadEndpoint", "missing interface", (r) => delete r.spec.interfaceName, ["spec.interfaceName"]],
  [
    "WorkloadEndpoint",
    "interface too long",
    (r) => (r.spec.interfaceName = "cali0123456789abc"),
    ["spec.interfaceName"],
  ],
  [
    "WorkloadEndpoint",
    "multi-address network",
    (r) => (r.spec.ipNetworks = ["10.0.0.0/24"]),
    ["spec.ipNetworks[0]"],
  ],
  ["WorkloadEndpoint", "port name uppercase", (r) => (r.spec.ports[0].name = "HTTP"), ["spec.ports[0].name"]],
  [
    "WorkloadEndpoint",
    "port protocol ICMP",
    (r) => (r.spec.ports[0].protocol = "ICMP"),
    ["spec.ports[0].protocol"],
  ],
  ["WorkloadEndpoint", "port 0", (r) => (r.spec.ports[0].port = 0), ["spec.ports[0].port"]],
  ["HostEndpoint", "no node", (r) => delete r.spec.node, ["spec.node"]],
  [
    "HostEndpoint",
    "no interface nor IPs",
    (r) => {
      delete r.spec.interfaceName;
      delete r.spec.expectedIPs;
    },
    ["spec"],
  ],
  [
    "HostEndpoint",
    "bad expected IP",
    (r) => (r.spec.expectedIPs = ["192.168.1.300"]),
    ["spec.expectedIPs[0]"],
  ],
  ["Tier", "dotted tier name", (r) => (r.metadata.name = "a.b"), ["metadata.name"]],
  ["Tier", "bad default action", (r) => (r.spec.defaultAction = "Allow"), ["spec.defaultAction"]],
  [
    "Tier",
    "default tier order",
    (r) => {
      r.metadata.name = "default";
      r.spec.order = 5;
    },
    ["spec.order"],
  ],
  ["NetworkPolicy", "bad action", (r) => (r.spec.ingress[1].action = "allow"), ["spec.ingress[1].action"]],
  [
    "NetworkPolicy",
    "ports without protocol",
    (r) => delete r.spec.ingress[0].protocol,
    ["spec.ingress[0].destination.ports"],
  ],
  [
    "NetworkPolicy",
    "bad port",
    (r) => (r.spec.ingress[0].destination.ports[1] = "9000:8000"),
    ["spec.ingress[0].destination.ports[1]"],
  ],
  [
    "NetworkPolicy",
    "port 0",
    (r) => (r.spec.ingress[0].destination.ports[0] = 0),
    ["spec.ingress[0].destination.ports[0]"],
  ],
  [
    "NetworkPolicy",
    "port 65536",
    (r) => (r.spec.egress[0].destination.ports[0] = 65536),
    ["spec.egress[0].destination.ports[0]"],
  ],
  [
    "NetworkPolicy",
    "icmp without icmp protocol",
    (r) => (r.spec.ingress[1].protocol = "TCP"),
    ["spec.ingress[1].icmp"],
  ],
  [
    "NetworkPolicy",
    "icmp v6 version",
    (r) => (r.spec.ingress[1].ipVersion = 6),
    ["spec.ingress[1].ipVersion"],
  ],
  [
    "NetworkPolicy",
    "icmp code without type",
    (r) => delete r.spec.ingress[1].icmp.type,
    ["spec.ingress[1].icmp.code"],
  ],
  [
    "NetworkPolicy",
    "icmp type 255",
    (r) => (r.spec.ingress[1].icmp.type = 255),
    ["spec.ingress[1].icmp.type"],
  ],
  [
    "NetworkPolicy",
    "protocol 0",
    (r) => (r.spec.egress[0].protocol = 0),
    ["spec.egress[0].protocol", "spec.egress[0].destination.ports"],
  ],
  [
    "NetworkPolicy",
    "protocol name",
    (r) => (r.spec.egress[0].protocol = "GRE"),
    ["spec.egress[0].protocol", "spec.egress[0].destination.ports"],
  ],
  [
    "NetworkPolicy",
    "mixed families",
    (r) => (r.spec.ingress[2].source.notNets = ["fd00::/8"]),
    ["spec.ingress[2].source.notNets"],
  ],
  [
    "NetworkPolicy",
    "net host bits",
    (r) => (r.spec.ingress[2].source.nets = ["192.168.1.1/16"]),
    ["spec.ingress[2].source.nets[0]"],
  ],
  ["NetworkPolicy", "global() in selector", (r) => (r.spec.selector = "global()"), ["spec.selector"]],
  [
    "NetworkPolicy",
    "global() combined",
    (r) => (r.spec.ingress[0].source.namespaceSelector = "global() && has(a)"),
    ["spec.ingress[0].source.namespaceSelector"],
  ],
  [
    "NetworkPolicy",
    "spaced global( ) in selector",
    (r) => (r.spec.selector = "global( ) || has(a)"),
    ["spec.selector"],
  ],
  [
    "NetworkPolicy",
    "negated global()",
    (r) => (r.spec.ingress[0].source.namespaceSelector = "!global()"),
    ["spec.ingress[0].source.namespaceSelector"],
  ],
  [
    "GlobalNetworkPolicy",
    "global() as policy namespaceSelector",
    (r) => (r.spec.namespaceSelector = "global()"),
    ["spec.namespaceSelector"],
  ],
  ["NetworkPolicy", "duplicate types", (r) => (r.spec.types = ["Ingress", "Ingress"]), ["spec.types[1]"]],
  ["NetworkPolicy", "bad type", (r) => (r.spec.types = ["ingress"]), ["spec.types[0]"]],
  ["NetworkPolicy", "rule unknown field", (r) => (r.spec.ingress[1].foo = 1), ["spec.ingress[1].foo"]],
  [
    "NetworkPolicy",
    "http on deny",
    (r) => (r.spec.ingress[2].http = { methods: ["GET"] }),
    ["spec.ingress[2].http"],
  ],
  [
    "NetworkPolicy",
    "http on egress",
    (r) => (r.spec.egress[0].http = { methods: ["GET"] }),
    ["spec.egress[0].protocol", "spec.egress[0].http"],
  ],
  [
    "NetworkPolicy",
    "http path",
    (r) => (r.spec.ingress[0].http = { paths: [{ exact: "x" }] }),
    ["spec.ingress[0].http.paths[0].exact"],
  ],
  [
    "NetworkPolicy",
    "services with selector",
    (r) => (r.spec.egress[0].destination = { services: { name: "db" }, selector: "a == 'b'" }),
    ["spec.egress[0].destination.services"],
  ],
  [
    "NetworkPolicy",
    "ingress services in destination",
    (r) => (r.spec.ingress[2].destination = { services: { name: "x" } }),
    ["spec.ingress[2].destination.services"],
  ],
  ["NetworkPolicy", "name with two dots", (r) => (r.metadata.name = "a.b.c"), ["metadata.name"]],
  ["NetworkPolicy", "spec not object", (r) => (r.spec = []), ["spec"]],
  [
    "GlobalNetworkPolicy",
    "preDNAT with egress",
    (r) => (r.spec.egress = [{ action: "Allow" }]),
    ["spec.egress"],
  ],
  ["GlobalNetworkPolicy", "preDNAT and doNotTrack", (r) => (r.spec.doNotTrack = true), ["spec.preDNAT"]],
  ["GlobalNetworkPolicy", "no applyOnForward", (r) => delete r.spec.applyOnForward, ["spec.applyOnForward"]],
  [
    "GlobalNetworkPolicy",
    "service without namespace",
    (r) => (r.spec.ingress[0] = { action: "Allow", source: { services: { name: "db" } } }),
    ["spec.ingress[0].source.services.namespace"],
  ],
  [
    "NetworkSet",
    "reserved label",
    (r) => (r.metadata.labels["projectcalico.org/namespace"] = "x"),
    ['metadata.labels["projectcalico.org/namespace"]'],
  ],
  ["GlobalNetworkSet", "bad net", (r) => (r.spec.nets = ["0.0.0.0/0", "::/129"]), ["spec.nets[1]"]],
  ["BGPPeer", "node and nodeSelector", (r) => (r.spec.node = "node-1"), ["spec.node"]],
  [
    "BGPPeer",
    "peerSelector and peerIP/AS",
    (r) => (r.spec.peerSelector = "has(rr)"),
    ["spec.peerIP", "spec.asNumber"],
  ],
  ["BGPPeer", "bad peerIP", (r) => (r.spec.peerIP = "192.168.1.1:0"), ["spec.peerIP"]],
  ["BGPPeer", "bad duration", (r) => (r.spec.maxRestartTime = "2 minutes"), ["spec.maxRestartTime"]],
  ["BGPPeer", "bad dotted AS", (r) => (r.spec.asNumber = "70000.1"), ["spec.asNumber"]],
  [
    "BGPConfiguration",
    "bad community",
    (r) => (r.spec.communities[0].value = "70000:1"),
    ["spec.communities[0].value"],
  ],
  [
    "BGPConfiguration",
    "undefined community name",
    (r) => (r.spec.prefixAdvertisements[0].communities = ["nope"]),
    ["spec.prefixAdvertisements[0].communities[0]"],
  ],
  [
    "BGPConfiguration",
    "mesh password with mesh off",
    (r) => (r.spec.nodeMeshPassword = { secretKeyRef: { name: "a", key: "b" } }),
    ["spec.nodeMeshPassword"],
  ],
  ["BGPConfiguration", "listen port 0", (r) => (r.spec.listenPort = 0), ["spec.listenPort"]],
  [
    "AgentConfiguration",
    "bad log level",
    (r) => (r.spec.logSeverityScreen = "Verbose"),
    ["spec.logSeverityScreen"],
  ],
  [
    "AgentConfiguration",
    "bad failsafe protocol",
    (r) => (r.spec.failsafeInboundHostPorts[0].protocol = "icmp"),
    ["spec.failsafeInboundHostPorts[0].protocol"],
  ],
  ["AgentConfiguration", "bad VNI", (r) => (r.spec.vxlanVNI = 0x1000000), ["spec.vxlanVNI"]],
];

describe("invalid resources name the exact path", () => {
  for (const [example, what, edit, paths] of invalid) {
    it(`${example}: ${what}`, () => {
      const input = edited(example, edit);
      const r = checkResource(input);
      expect(r.ok).toBe(false);
      if (r.ok) return;
      expect(r.issues.map((i) => i.path)).toEqual(paths);
      for (const issue of r.issues) expect(issue.message.length).toBeGreaterThan(5);
      let thrown: unknown;
      try {
        validateResource(input);
      } catch (e) {
        thrown = e;
      }
      expect(isValidationError(thrown)).toBe(true);
      const err = thrown as ValidationError;
      expect(err.code).toBe("invalid-resource");
      expect(err.details.kind).toBe((validExamples[example] as { kind: string }).kind);
      expect(err.message).toContain(paths[0]);
    });
  }

  it("rejects non-objects and unknown kinds", () => {
    expect(issuesOf(null)).toEqual([": expected a resource object"]);
    expect(issuesOf([])).toEqual([": expected a resource object"]);
    expect(issuesOf({ apiVersion: "margay.io/v1", kind: "Pod", metadata: { name: "x" } })[0]).toMatch(
      /^kind: unknown kind "Pod"/,
    );
  });

  it("reports every issue, not just the first", () => {
    const input = edited("NetworkPolicy", (r) => {
      r.metadata.name = "BAD";
      r.spec.order = "1";
      r.spec.ingress[0].destination.ports[0] = -1;
    });
    expect(issuesOf(input).map((s) => s.split(":")[0])).toEqual([
      "metadata.name",
      "spec.order",
      "spec.ingress[0].destination.ports[0]",
    ]);
  });
});

describe("withDefaults", () => {
  it("fills pool defaults per IP version", () => {
    const v4 = withDefaults(
      validateResource({
        apiVersion: "margay.io/v1",
        kind: "IPPool",
        metadata: { name: "p" },
        spec: { cidr: "10.0.0.0/16" },
      }),
    );
    expect(v4.spec).toEqual({
      cidr: "10.0.0.0/16",
      blockSize: 26,
      ipipMode: "Never",
      vxlanMode: "Never",
      natOutgoing: false,
      disabled: false,
      disableBGPExport: false,
      nodeSelector: "all()",
      allowedUses: ["Workload", "Tunnel"],
      assignmentMode: "Automatic",
    });
    const v6 = withDefaults(
      validateResource({
        apiVersion: "margay.io/v1",
        kind: "IPPool",
        metadata: { name: "p" },
        spec: { cidr: "fd00::/48" },
      }),
    );
    if (!isIPPool(v6)) throw new Error("kind");
    expect(v6.spec.blockSize).toBe(122);
  });

  it("defaults policy types from the rules present (Calico's table)", () => {
    const np = (spec: object) =>
      withDefaults(
        validateResource({
          apiVersion: "margay.io/v1",
          kind: "NetworkPolicy",
          metadata: { name: "p", namespace: "n" },
          spec,
        }),
      ).spec;
    expect(np({})).toMatchObject({ types: ["Ingress"], tier: "default", selector: "all()" });
    expect(np({ ingress: [{ action: "Allow" }] })).toMatchObject({ types: ["Ingress"] });
    expect(np({ egress: [{ action: "Allow" }] })).toMatchObject({ types: ["Egress"] });
    expect(np({ ingress: [{ action: "Allow" }], egress: [{ action: "Allow" }] })).toMatchObject({
      types: ["Ingress", "Egress"],
    });
    expect(np({ types: ["Egress"] })).toMatchObject({ types: ["Egress"] });
  });

  it("IPAM config, tiers and singleton configurations", () => {
    const ipam = withDefaults(
      validateResource({ apiVersion: "margay.io/v1", kind: "IPAMConfig", metadata: { name: "default" } }),
    );
    expect(ipam.spec).toEqual({ strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 20 });
    const tier = withDefaults(
      validateResource({ apiVersion: "margay.io/v1", kind: "Tier", metadata: { name: "default" } }),
    );
    expect(tier.spec).toEqual({ order: 1_000_000, defaultAction: "Deny" });
    const bgpDefault = withDefaults(
      validateResource({
        apiVersion: "margay.io/v1",
        kind: "BGPConfiguration",
        metadata: { name: "default" },
      }),
    );
    expect(bgpDefault.spec).toEqual({
      logSeverityScreen: "Info",
      nodeToNodeMeshEnabled: true,
      asNumber: 64512,
      listenPort: 179,
    });
    const bgpNode = withDefaults(
      validateResource({
        apiVersion: "margay.io/v1",
        kind: "BGPConfiguration",
        metadata: { name: "node.n1" },
        spec: { listenPort: 1790 },
      }),
    );
    expect(bgpNode.spec).toEqual({ listenPort: 1790 });
    const agent = withDefaults(
      validateResource({
        apiVersion: "margay.io/v1",
        kind: "AgentConfiguration",
        metadata: { name: "default" },
        spec: { vxlanPort: 8472 },
      }),
    );
    expect(agent.spec).toMatchObject({
      vxlanPort: 8472,
      vxlanVNI: 4096,
      interfacePrefix: "mgy",
      healthPort: 9099,
    });
  });

  it("rejects non-resources with a ValidationError", () => {
    for (const bad of [null, { kind: "Pod" }, { kind: "IPPool" }]) {
      let e: unknown;
      try {
        withDefaults(bad as unknown as Resource);
      } catch (err) {
        e = err;
      }
      expect(isValidationError(e)).toBe(true);
    }
  });

  it("does not mutate its input", () => {
    const r = validateResource(validExamples.IPPool);
    const before = clone(r);
    withDefaults(r);
    expect(r).toEqual(before);
  });
});

describe("kinds", () => {
  it("KIND_INFO lists plural and scope", () => {
    expect(KIND_INFO.IPPool).toEqual({
      kind: "IPPool",
      plural: "ippools",
      namespaced: false,
      listKind: "IPPoolList",
    });
    expect(KIND_INFO.NetworkPolicy.namespaced).toBe(true);
    expect(RESOURCE_KINDS.filter((k) => KIND_INFO[k].namespaced).sort()).toEqual([
      "NetworkPolicy",
      "NetworkSet",
      "WorkloadEndpoint",
    ]);
  });

  it("validateResource with an expected kind narrows the type and checks the kind", () => {
    const pool = validateResource(validExamples.IPPool, "IPPool");
    expectTypeOf(pool).toEqualTypeOf<IPPool>();
    expect(pool.spec.cidr).toBe("10.244.0.0/16");
    const r = checkResource(validExamples.IPPool, "Tier");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues).toEqual([{ path: "kind", message: 'expected kind "Tier", got "IPPool"' }]);
  });

  it("type guards discriminate", () => {
    const r: Resource = validateResource(validExamples.IPPool);
    expect(isIPPool(r)).toBe(true);
    expect(isNetworkPolicy(r)).toBe(false);
    expect(isIPPool({ ...r, apiVersion: "projectcalico.org/v3" })).toBe(false);
    expect(isIPPool(null)).toBe(false);
  });

  it("ObjectMeta is structurally the datastore's StoredObjectMeta", () => {
    // A copy of packages/datastore/src/types.ts StoredObjectMeta (api must not import datastore).
    interface StoredObjectMeta {
      name: string;
      namespace?: string;
      resourceVersion?: string;
      uid?: string;
      creationTimestamp?: string;
      labels?: Record<string, string>;
      annotations?: Record<string, string>;
    }
    expectTypeOf<ObjectMeta>().toEqualTypeOf<StoredObjectMeta>();
    expectTypeOf<ResourceOfKind<"IPPool">>().toEqualTypeOf<IPPool>();
    expectTypeOf<Resource>().toExtend<{ apiVersion?: string; kind: string; metadata: StoredObjectMeta }>();
  });
});
