import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  checkResource,
  isManifestError,
  MAX_MANIFEST_NESTING,
  type ManifestError,
  parseManifests,
  type Resource,
  toJSON,
  toYAML,
  validateResource,
} from "../index.js";
import { validExamples } from "../validation/fixtures.js";

function manifestError(text: string, opts = {}): ManifestError {
  try {
    parseManifests(text, opts);
  } catch (e) {
    if (isManifestError(e)) return e;
    throw e;
  }
  throw new Error("expected a ManifestError");
}

const examples: Resource[] = Object.values(validExamples).map((e) => validateResource(e));

describe("parseManifests: Margay documents", () => {
  it("reads multi-document YAML with comments and empty documents", () => {
    const text = `# pools
apiVersion: margay.io/v1
kind: IPPool
metadata:
  name: pool-a
spec:
  cidr: 10.244.0.0/16
---
---
apiVersion: margay.io/v1
kind: NetworkPolicy
metadata: {name: allow-dns, namespace: kube-system}
spec:
  selector: k8s-app == "kube-dns"
  ingress:
    - action: Allow
      protocol: UDP
      destination: {ports: [53]}
---
`;
    const { resources, items } = parseManifests(text);
    expect(resources.map((r) => `${r.kind}/${r.metadata.name}`)).toEqual([
      "IPPool/pool-a",
      "NetworkPolicy/allow-dns",
    ]);
    expect(items.map((i) => [i.documentIndex, i.line])).toEqual([
      [0, 2],
      [2, 10],
    ]);
    expect(items.every((i) => i.convertedFrom === undefined && i.warnings.length === 0)).toBe(true);
  });

  it("reads kind: List, <Kind>List (items may omit kind/apiVersion), JSON objects and arrays", () => {
    const list = `apiVersion: v1
kind: List
items:
  - apiVersion: margay.io/v1
    kind: Tier
    metadata: {name: security}
    spec: {order: 100}
  - apiVersion: margay.io/v1
    kind: GlobalNetworkSet
    metadata: {name: internet}
    spec: {nets: [0.0.0.0/0]}
`;
    const r1 = parseManifests(list);
    expect(r1.resources.map((r) => r.kind)).toEqual(["Tier", "GlobalNetworkSet"]);
    expect(r1.items.map((i) => [i.itemIndex, i.line])).toEqual([
      [0, 4],
      [1, 8],
    ]);

    const typed = `apiVersion: margay.io/v1
kind: IPPoolList
items:
  - metadata: {name: a}
    spec: {cidr: 10.1.0.0/16}
  - metadata: {name: b}
    spec: {cidr: 10.2.0.0/16}
`;
    expect(parseManifests(typed).resources.map((r) => r.metadata.name)).toEqual(["a", "b"]);

    const json = JSON.stringify(validExamples.IPPool);
    expect(parseManifests(json).resources).toEqual([examples[0]]);
    const arr = JSON.stringify([validExamples.IPPool, validExamples.Tier]);
    expect(parseManifests(arr).resources.map((r) => r.kind)).toEqual(["IPPool", "Tier"]);
    expect(parseManifests("").resources).toEqual([]);
    expect(parseManifests("# only a comment\n").resources).toEqual([]);
  });

  it("applies defaults on request", () => {
    const { resources } = parseManifests(
      "apiVersion: margay.io/v1\nkind: IPPool\nmetadata: {name: p}\nspec: {cidr: 'fd00::/48'}\n",
      { defaults: true },
    );
    expect(resources[0]?.spec).toMatchObject({ blockSize: 122, vxlanMode: "Never" });
  });
});

describe("toYAML / toJSON round trip", () => {
  it("YAML of every example parses back to the same resources", () => {
    const text = toYAML(examples);
    expect(text.split("---\n").length).toBe(examples.length);
    expect(parseManifests(text).resources).toEqual(examples);
    expect(parseManifests(toYAML(examples[3]!)).resources).toEqual([examples[3]]);
  });

  it("JSON of one resource and of a list parses back", () => {
    expect(parseManifests(toJSON(examples[0]!)).resources).toEqual([examples[0]]);
    expect(parseManifests(toJSON(examples, { indent: 0 })).resources).toEqual(examples);
    expect(JSON.parse(toJSON(examples)).kind).toBe("List");
  });
});

describe("parseManifests: Calico documents", () => {
  it("converts the Calico docs' examples", () => {
    const text = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: my.ippool-1
  resourceVersion: "1234"
  creationTimestamp: "2024-01-01T00:00:00Z"
  uid: 3a1e0d3c-0000-0000-0000-000000000000
spec:
  cidr: 10.1.0.0/16
  ipipMode: CrossSubnet
  natOutgoing: true
  disabled: false
  nodeSelector: all()
  allowedUses:
    - Workload
    - Tunnel
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata:
  name: allow-tcp-6379
spec:
  selector: role == 'database'
  types:
    - Ingress
    - Egress
  ingress:
    - action: Allow
      metadata:
        annotations:
          from: frontend
          to: database
      protocol: TCP
      source:
        selector: role == 'frontend'
      destination:
        ports:
          - 6379
  egress:
    - action: Allow
  performanceHints: [AssumeNeededOnEveryNode]
status: {}
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata:
  name: some.name
spec:
  node: rack1-host1
  peerIP: 192.168.1.1
  asNumber: 63400
---
apiVersion: projectcalico.org/v3
kind: IPAMConfiguration
metadata:
  name: default
spec:
  strictAffinity: false
---
apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata:
  name: default
spec:
  ipv6Support: false
  ipipMTU: 1400
  chainInsertMode: Append
  nftablesRefreshInterval: 60s
  failsafeInboundHostPorts:
    - protocol: tcp
      port: 22
`;
    const { items } = parseManifests(text, { annotateConversions: true });
    expect(items.map((i) => [i.resource.kind, i.convertedFrom?.kind])).toEqual([
      ["IPPool", "IPPool"],
      ["GlobalNetworkPolicy", "GlobalNetworkPolicy"],
      ["BGPPeer", "BGPPeer"],
      ["IPAMConfig", "IPAMConfiguration"],
      ["AgentConfiguration", "FelixConfiguration"],
    ]);
    for (const i of items) {
      expect(i.resource.apiVersion).toBe("margay.io/v1");
      expect(i.resource.metadata.annotations?.["margay.io/converted-from"]).toBe(
        `projectcalico.org/v3/${i.convertedFrom?.kind}`,
      );
    }
    const [pool, gnp, , ipam, agent] = items;
    expect(pool?.resource.metadata).toEqual({
      name: "my.ippool-1",
      annotations: { "margay.io/converted-from": "projectcalico.org/v3/IPPool" },
    });
    expect(pool?.warnings).toEqual([
      "dropped metadata.resourceVersion (assigned by Calico's datastore or Kubernetes-only)",
      "dropped metadata.creationTimestamp (assigned by Calico's datastore or Kubernetes-only)",
      "dropped metadata.uid (assigned by Calico's datastore or Kubernetes-only)",
    ]);
    expect(gnp?.warnings).toEqual([
      "dropped status",
      "dropped spec.performanceHints (not supported by Margay)",
    ]);
    expect(ipam?.resource.spec).toEqual({ strictAffinity: false, maxBlocksPerHost: 0 });
    expect(agent?.resource.spec).toEqual({
      ipipMTU: 1400,
      dataplaneRefreshInterval: "60s",
      failsafeInboundHostPorts: [{ protocol: "TCP", port: 22 }],
    });
    expect(agent?.warnings).toEqual([
      "renamed spec.nftablesRefreshInterval to spec.dataplaneRefreshInterval",
      "dropped spec.ipv6Support (not supported by Margay)",
      "dropped spec.chainInsertMode (not supported by Margay)",
    ]);
  });

  it("reads calicoctl output for nodes, workload endpoints and profiles", () => {
    const text = `apiVersion: projectcalico.org/v3
kind: Node
metadata:
  annotations:
    projectcalico.org/kube-labels: '{"kubernetes.io/hostname":"node1"}'
  creationTimestamp: "2024-05-01T10:00:00Z"
  labels:
    kubernetes.io/hostname: node1
  name: node1
  resourceVersion: "1567"
  uid: 9a6b3c1e-0d7e-4f5a-8b2c-1d2e3f4a5b6c
spec:
  addresses:
  - address: 10.128.0.2/32
    type: CalicoNodeIP
  - address: 10.128.0.2
    type: InternalIP
  bgp:
    ipv4Address: 10.128.0.2/32
    ipv4IPIPTunnelAddr: 192.168.0.1
  orchRefs:
  - nodeName: node1
    orchestrator: k8s
status:
  podCIDRs:
  - 192.168.0.0/24
---
apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  labels:
    app: frontend
    projectcalico.org/namespace: default
    projectcalico.org/orchestrator: k8s
    projectcalico.org/serviceaccount: default
  name: node1-k8s-frontend--5gs43-eth0
  namespace: default
spec:
  containerID: 7e5c3a0b9f7d
  endpoint: eth0
  interfaceName: cali0ef24ba1b2c
  ipNetworks:
  - 192.168.0.7/32
  node: node1
  orchestrator: k8s
  pod: frontend-5gs43
  ports:
  - hostIP: ""
    hostPort: 0
    name: http
    port: 80
    protocol: TCP
  profiles:
  - kns.default
  - ksa.default.default
  serviceAccountName: default
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata:
  name: kns.default
spec:
  egress:
  - action: Allow
    destination: {}
    source: {}
  ingress:
  - action: Allow
    destination: {}
    source: {}
  labelsToApply:
    pcns.projectcalico.org/name: default
`;
    const { items } = parseManifests(text);
    expect(items.map((i) => i.resource.kind)).toEqual(["Node", "WorkloadEndpoint", "Profile"]);
    expect(items[0]?.resource.spec).toMatchObject({
      bgp: { ipv4Address: "10.128.0.2/32", ipv4IPIPTunnelAddr: "192.168.0.1" },
    });
    expect(items[0]?.warnings).toContain("dropped status");
    expect(items[1]?.resource.spec).toMatchObject({
      ports: [{ name: "http", port: 80, protocol: "TCP", hostPort: 0 }],
    });
    expect(items[1]?.warnings).toEqual([]);
    expect(items[2]?.resource.spec).toMatchObject({
      labelsToApply: { "pcns.projectcalico.org/name": "default" },
    });
  });

  it("reads a Calico <Kind>List as printed by calicoctl", () => {
    const text = `apiVersion: projectcalico.org/v3
kind: NetworkPolicyList
metadata:
  resourceVersion: "99"
items:
  - metadata: {name: a, namespace: prod}
    spec: {selector: all(), types: [Ingress]}
  - metadata: {name: b, namespace: prod}
    spec: {selector: app == 'x'}
`;
    const { items } = parseManifests(text);
    expect(items.map((i) => [i.resource.kind, i.resource.metadata.name, i.convertedFrom?.kind])).toEqual([
      ["NetworkPolicy", "a", "NetworkPolicy"],
      ["NetworkPolicy", "b", "NetworkPolicy"],
    ]);
  });

  it("strict mode rejects Calico fields Margay does not implement", () => {
    const text = `apiVersion: projectcalico.org/v3
kind: FelixConfiguration
metadata: {name: default}
spec: {bpfEnabled: true}
`;
    const e = manifestError(text, { strict: true });
    expect(e.details).toMatchObject({
      reason: "unsupported-field",
      documentIndex: 0,
      kind: "FelixConfiguration",
    });
    expect(e.message).toContain("spec.bpfEnabled");
    expect(parseManifests(text).items[0]?.warnings).toEqual([
      "dropped spec.bpfEnabled (not supported by Margay)",
    ]);
  });
});

describe("parseManifests: errors", () => {
  it("rejects an unknown Calico kind naming the document", () => {
    const text = `apiVersion: margay.io/v1
kind: Tier
metadata: {name: t}
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: {name: f}
spec: {}
`;
    const e = manifestError(text);
    expect(e.code).toBe("invalid-manifest");
    expect(e.details).toMatchObject({ reason: "unknown-kind", documentIndex: 1, line: 5, kind: "BGPFilter" });
    expect(e.message).toMatch(/^document 1, line 5: Calico kind "BGPFilter" is not supported/);
  });

  it("rejects unknown Margay kinds and unsupported apiVersions", () => {
    expect(manifestError("apiVersion: margay.io/v1\nkind: Pod\nmetadata: {name: x}\n").details.reason).toBe(
      "unknown-kind",
    );
    expect(manifestError("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n").details.reason).toBe(
      "unsupported-api-version",
    );
    expect(manifestError("just a string\n").details.reason).toBe("not-an-object");
    expect(manifestError("apiVersion: v1\nkind: List\nitems: 3\n").details.reason).toBe("not-an-object");
  });

  it("reports YAML syntax errors with document and line", () => {
    const text = `apiVersion: margay.io/v1
kind: Tier
metadata: {name: t}
---
apiVersion: margay.io/v1
kind: Tier
metadata: {name: [t}
`;
    const e = manifestError(text);
    expect(e.details.reason).toBe("syntax");
    expect(e.details.documentIndex).toBe(1);
    expect(e.details.line).toBeGreaterThanOrEqual(7);
    const dup = manifestError("apiVersion: margay.io/v1\nkind: Tier\nkind: Node\n");
    expect(dup.details).toMatchObject({ reason: "syntax", documentIndex: 0, line: 3 });
    const json = manifestError(
      '{"apiVersion": "margay.io/v1",\n "kind": "Tier",\n "metadata": {"name": "t"}',
    );
    expect(json.details).toMatchObject({ reason: "syntax", documentIndex: 0, line: 3, column: 27 });
  });

  it("reports invalid resources with their validation issues and list position", () => {
    const text = `apiVersion: margay.io/v1
kind: GlobalNetworkSetList
items:
  - metadata: {name: ok}
    spec: {nets: [10.0.0.0/8]}
  - metadata: {name: bad}
    spec: {nets: [10.0.0.0/8, 300.0.0.0/8]}
`;
    const e = manifestError(text);
    expect(e.details).toMatchObject({ reason: "invalid-resource", documentIndex: 0, itemIndex: 1, line: 6 });
    expect(e.details.issues).toEqual([{ path: "spec.nets[1]", message: 'invalid CIDR "300.0.0.0/8"' }]);
  });

  it("refuses collections nested deeper than MAX_MANIFEST_NESTING with a syntax error, however deep", () => {
    // Far deeper input used to reach the recursive YAML composer: a RangeError, or a V8 abort of the process.
    const n = 20_000;
    const deep = [
      "[".repeat(n) + "]".repeat(n),
      `${"{a: ".repeat(n)}1${"}".repeat(n)}`,
      `${"- ".repeat(n)}x`,
      Array.from({ length: 300 }, (_, i) => `${" ".repeat(i)}a:`).join("\n"),
      `apiVersion: margay.io/v1\nkind: Tier\nmetadata: {name: t}\n---\nx: ${"[".repeat(n)}`,
    ];
    for (const text of deep) {
      const e = manifestError(text);
      expect(e.details.reason).toBe("syntax");
      expect(e.message).toContain(`nested deeper than ${MAX_MANIFEST_NESTING} levels`);
    }
    // The error points at the first collection past the limit: the root map is level 1, `[` at column 4 level 2.
    expect(manifestError(deep[4]!).details).toMatchObject({
      documentIndex: 1,
      line: 5,
      column: 4 + MAX_MANIFEST_NESTING - 1,
    });
    // The limit itself is fine: root map, spec map, then flow sequences up to MAX_MANIFEST_NESTING in all.
    const nested = (levels: number) =>
      `apiVersion: margay.io/v1\nkind: Tier\nmetadata: {name: t}\nspec: {x: ${"[".repeat(levels)}${"]".repeat(levels)}}\n`;
    const atLimit = manifestError(nested(MAX_MANIFEST_NESTING - 2));
    expect(atLimit.details.reason).toBe("invalid-resource");
    expect(atLimit.details.issues).toEqual([{ path: "spec.x", message: "unknown field" }]);
    expect(manifestError(nested(MAX_MANIFEST_NESTING - 1)).details.reason).toBe("syntax");
  });

  it("limits YAML alias expansion", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++)
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(", ")}]`,
      );
    expect(manifestError(bomb.join("\n")).details.reason).toBe("syntax");
  });
});

describe("parseManifests properties", () => {
  it("arbitrary text never throws anything but ManifestError", () => {
    const yamlish = fc.array(
      fc.constantFrom(
        "apiVersion: ",
        "margay.io/v1",
        "projectcalico.org/v3",
        "kind: ",
        "IPPool",
        "List",
        "items:",
        "\n",
        "  ",
        "- ",
        "---\n",
        "{",
        "}",
        "[",
        "]",
        ":",
        "&a ",
        "*a",
        "'",
        '"',
        "spec:",
        "metadata:",
        "name: x",
        "cidr: 10.0.0.0/8",
        "# c",
        "\t",
      ),
      { maxLength: 30 },
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          yamlish.map((p) => p.join("")),
        ),
        (text) => {
          try {
            parseManifests(text);
          } catch (e) {
            if (!isManifestError(e)) throw e;
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("every valid resource survives a YAML and a JSON round trip", () => {
    const kinds = Object.values(validExamples);
    fc.assert(
      fc.property(
        fc.subarray(kinds, { minLength: 1 }),
        fc.string({ maxLength: 40 }),
        (chosen, annotation) => {
          const resources = chosen.map((c) => {
            const r = validateResource(c);
            return { ...r, metadata: { ...r.metadata, annotations: { "example.com/note": annotation } } };
          });
          for (const r of resources) expect(checkResource(r).ok).toBe(true);
          expect(parseManifests(toYAML(resources as Resource[])).resources).toEqual(resources);
          expect(parseManifests(toJSON(resources as Resource[])).resources).toEqual(resources);
        },
      ),
      { numRuns: 100 },
    );
  });
});
