import type { BGPConfiguration, BGPPeer, BGPPeerSpec, Node, NodeBGPSpec } from "@margay/api";
import { describe, expect, it } from "vitest";
import { type DeriveBgpPeersInput, deriveBgpPeers } from "./derive.js";

function node(name: string, bgp: NodeBGPSpec | undefined, labels: Record<string, string> = {}): Node {
  return {
    apiVersion: "margay.io/v1",
    kind: "Node",
    metadata: { name, labels },
    spec: bgp === undefined ? {} : { bgp },
  };
}
function peer(name: string, spec: BGPPeerSpec): BGPPeer {
  return { apiVersion: "margay.io/v1", kind: "BGPPeer", metadata: { name }, spec };
}
function config(name: string, spec: BGPConfiguration["spec"]): BGPConfiguration {
  return { apiVersion: "margay.io/v1", kind: "BGPConfiguration", metadata: { name }, spec };
}
function derive(nodeName: string, rest: Partial<Omit<DeriveBgpPeersInput, "nodeName">>) {
  return deriveBgpPeers({ nodeName, nodes: [], configurations: [], peers: [], ...rest });
}
const ids = (r: ReturnType<typeof deriveBgpPeers>) => r.peers.map((p) => p.id);

// Three hosts of one rack, as in Calico's "Configure BGP peering" examples.
const nodes = [
  node("node-1", { ipv4Address: "10.0.0.1/24" }, { rack: "rack-1" }),
  node("node-2", { ipv4Address: "10.0.0.2/24" }, { rack: "rack-1" }),
  node("node-3", { ipv4Address: "10.0.0.3/24" }, { rack: "rack-2" }),
];

describe("deriveBgpPeers: node-to-node mesh", () => {
  it("peers with every other node by default (nodeToNodeMeshEnabled defaults to true), never itself", () => {
    const r = derive("node-2", { nodes });
    expect(r.enabled).toBe(true);
    expect(r.localAsNumber).toBe(64512);
    expect(r.routerId).toBe("10.0.0.2");
    expect(r.listenPort).toBe(179);
    expect(ids(r)).toEqual(["10.0.0.1", "10.0.0.3"]);
    for (const p of r.peers) {
      expect(p).toMatchObject({ scope: "mesh", asNumber: 64512, localAsNumber: 64512, port: 179 });
      expect(p.routeReflectorClient).toBe(false);
      expect(p.localAddress).toBe("10.0.0.2");
    }
    expect(r.unsupported).toEqual([]);
  });

  it("is unidirectional: the lower address waits (passive), the higher one connects", () => {
    const r = derive("node-2", { nodes });
    expect(r.peers.find((p) => p.address === "10.0.0.1")!.passive).toBe(false);
    expect(r.peers.find((p) => p.address === "10.0.0.3")!.passive).toBe(true);
    // Numeric order, not text order: 10.0.0.9 < 10.0.0.10.
    const n = [node("a", { ipv4Address: "10.0.0.9/24" }), node("b", { ipv4Address: "10.0.0.10/24" })];
    expect(derive("a", { nodes: n }).peers[0]!.passive).toBe(true);
    expect(derive("b", { nodes: n }).peers[0]!.passive).toBe(false);
  });

  it("uses each node's AS (Node.spec.bgp.asNumber over the cluster's) and the peer's listenPort", () => {
    const r = derive("node-1", {
      nodes: [
        node("node-1", { ipv4Address: "10.0.0.1/24", asNumber: 65001 }),
        node("node-2", { ipv4Address: "10.0.0.2/24" }),
      ],
      configurations: [
        config("default", { asNumber: 63400, listenPort: 1179 }),
        config("node.node-2", { listenPort: 2179 }),
      ],
    });
    expect(r.localAsNumber).toBe(65001);
    expect(r.listenPort).toBe(1179);
    expect(r.peers).toEqual([
      expect.objectContaining({ id: "10.0.0.2:2179", asNumber: 63400, localAsNumber: 65001 }),
    ]);
  });

  it("meshes IPv6 between nodes that have IPv6 addresses", () => {
    const r = derive("a", {
      nodes: [
        node("a", { ipv4Address: "10.0.0.1/24", ipv6Address: "fd00::1/64" }),
        node("b", { ipv4Address: "10.0.0.2/24", ipv6Address: "fd00::2/64" }),
        node("c", { ipv4Address: "10.0.0.3/24" }),
      ],
    });
    expect(ids(r)).toEqual(["10.0.0.2", "10.0.0.3", "fd00::2"]);
    expect(r.peers.find((p) => p.family === 6)!.localAddress).toBe("fd00::1");
  });

  it("leaves out nodes without a BGP address; a node without one runs no BGP", () => {
    const n = [...nodes, node("vxlan-only", undefined)];
    expect(ids(derive("node-1", { nodes: n }))).toEqual(["10.0.0.2", "10.0.0.3"]);
    const r = derive("vxlan-only", { nodes: n });
    expect(r.enabled).toBe(false);
    expect(r.peers).toEqual([]);
    expect(r.skipped[0]).toContain("no BGP address");
    expect(derive("unknown", { nodes: n }).skipped[0]).toContain("no Node resource");
  });

  it("nodeToNodeMeshEnabled: false removes the mesh", () => {
    const r = derive("node-1", {
      nodes,
      configurations: [config("default", { nodeToNodeMeshEnabled: false })],
    });
    expect(r.nodeToNodeMesh).toBe(false);
    expect(r.peers).toEqual([]);
  });

  it("nodeMeshMaxRestartTime sets the restart time of mesh sessions", () => {
    const r = derive("node-1", {
      nodes,
      configurations: [config("default", { nodeMeshMaxRestartTime: "2m" })],
      defaultRestartSeconds: 90,
    });
    expect(r.peers.map((p) => p.gracefulRestartSeconds)).toEqual([120, 120]);
    expect(derive("node-1", { nodes, defaultRestartSeconds: 90 }).peers[0]!.gracefulRestartSeconds).toBe(90);
  });
});

describe("deriveBgpPeers: BGPPeer scopes (Calico 'Configure BGP peering')", () => {
  it("a global peer (no node, no nodeSelector) applies to every node", () => {
    const tor = peer("my-global-peer", { peerIP: "192.20.30.40", asNumber: 64567 });
    for (const n of ["node-1", "node-2", "node-3"]) {
      const r = derive(n, { nodes, peers: [tor] });
      const p = r.peers.find((x) => x.address === "192.20.30.40")!;
      expect(p).toMatchObject({
        scope: "global",
        asNumber: 64567,
        passive: false,
        port: 179,
        source: "BGPPeer my-global-peer",
      });
      expect(p.peerNode).toBeUndefined();
    }
  });

  it("a per-node peer (spec.node) applies to that node only", () => {
    const p = peer("rack1-tor", { node: "node-1", peerIP: "192.168.1.1", asNumber: 63400 });
    expect(ids(derive("node-1", { nodes, peers: [p] }))).toContain("192.168.1.1");
    expect(ids(derive("node-2", { nodes, peers: [p] }))).not.toContain("192.168.1.1");
    expect(
      derive("node-1", { nodes, peers: [p] }).peers.find((x) => x.address === "192.168.1.1")!.scope,
    ).toBe("node");
  });

  it("nodeSelector picks the nodes that peer (rack == 'rack-1')", () => {
    const p = peer("rack1-tor", { nodeSelector: "rack == 'rack-1'", peerIP: "10.0.0.254", asNumber: 64512 });
    expect(ids(derive("node-1", { nodes, peers: [p] }))).toContain("10.0.0.254");
    expect(ids(derive("node-2", { nodes, peers: [p] }))).toContain("10.0.0.254");
    expect(ids(derive("node-3", { nodes, peers: [p] }))).not.toContain("10.0.0.254");
  });

  it("peerIP with a port, IPv6 with a port, and an IPv6 peer on an IPv4-only node (skipped, with why)", () => {
    const r = derive("node-1", {
      nodes,
      peers: [
        peer("a", { peerIP: "192.0.2.1:1179", asNumber: 65000 }),
        peer("b", { peerIP: "[2001:db8::1]:1179", asNumber: 65000 }),
      ],
    });
    expect(ids(r)).toContain("192.0.2.1:1179");
    expect(r.peers.find((p) => p.id === "192.0.2.1:1179")!.port).toBe(1179);
    expect(ids(r)).not.toContain("[2001:db8::1]:1179");
    expect(r.skipped.join("\n")).toContain(
      "BGPPeer b: peer 2001:db8::1 is IPv6 but this node has no IPv6 BGP address",
    );
  });

  it("a peerIP that is a node's address uses that node's AS and listenPort; our own address is skipped", () => {
    const r = derive("node-1", {
      nodes,
      configurations: [
        config("default", { nodeToNodeMeshEnabled: false }),
        config("node.node-2", { listenPort: 1790 }),
      ],
      peers: [
        peer("to-node-2", { peerIP: "10.0.0.2" }),
        peer("to-self", { peerIP: "10.0.0.1", asNumber: 1 }),
      ],
    });
    expect(r.peers).toEqual([
      expect.objectContaining({ id: "10.0.0.2:1790", asNumber: 64512, peerNode: "node-2" }),
    ]);
    expect(r.skipped).toEqual([]);
  });

  it("an explicit peering of a mesh peer's address wins over the mesh (no duplicate session)", () => {
    const r = derive("node-1", { nodes, peers: [peer("n2", { peerIP: "10.0.0.2", asNumber: 64512 })] });
    expect(ids(r)).toEqual(["10.0.0.2", "10.0.0.3"]);
    expect(r.peers[0]!.source).toBe("BGPPeer n2");
    expect(r.skipped).toEqual([]);
  });

  it("sourceAddress None leaves the source address to the kernel; maxRestartTime sets the restart time", () => {
    const r = derive("node-1", {
      nodes,
      peers: [
        peer("x", { peerIP: "192.0.2.1", asNumber: 65000, sourceAddress: "None", maxRestartTime: "10s" }),
      ],
    });
    const p = r.peers.find((x) => x.address === "192.0.2.1")!;
    expect(p.localAddress).toBeUndefined();
    expect(p.gracefulRestartSeconds).toBe(10);
  });
});

describe("deriveBgpPeers: route reflectors (Calico 'Configure a node to act as a route reflector')", () => {
  // Mesh off; node-3 is a route reflector labelled route-reflector=true; every node peers with the
  // route reflectors through one BGPPeer (nodeSelector all(), peerSelector route-reflector == 'true').
  const rrNodes = [
    node("node-1", { ipv4Address: "10.0.0.1/24" }),
    node("node-2", { ipv4Address: "10.0.0.2/24" }),
    node(
      "rr-1",
      { ipv4Address: "10.0.0.3/24", routeReflectorClusterID: "244.0.0.1" },
      { "route-reflector": "true" },
    ),
  ];
  const meshOff = config("default", { nodeToNodeMeshEnabled: false });
  const toRr = peer("peer-with-route-reflectors", {
    nodeSelector: "all()",
    peerSelector: "route-reflector == 'true'",
  });

  it("a client node peers with the route reflector only, as an ordinary iBGP peer", () => {
    const r = derive("node-1", { nodes: rrNodes, configurations: [meshOff], peers: [toRr] });
    expect(r.peers).toEqual([
      expect.objectContaining({
        id: "10.0.0.3",
        peerNode: "rr-1",
        routeReflectorClient: false,
        scope: "node",
      }),
    ]);
    expect(r.peers[0]!.passive).toBe(true); // 10.0.0.1 < 10.0.0.3: the reflector connects
  });

  it("the route reflector peers back with every node the BGPPeer selects, as route-reflector clients", () => {
    const r = derive("rr-1", { nodes: rrNodes, configurations: [meshOff], peers: [toRr] });
    expect(r.routeReflectorClusterId).toBe("244.0.0.1");
    expect(ids(r)).toEqual(["10.0.0.1", "10.0.0.2"]);
    expect(r.peers.every((p) => p.routeReflectorClient && !p.passive)).toBe(true);
  });

  it("two reflectors of one cluster peer as non-clients", () => {
    const two = [
      ...rrNodes,
      node(
        "rr-2",
        { ipv4Address: "10.0.0.4/24", routeReflectorClusterID: "244.0.0.1" },
        { "route-reflector": "true" },
      ),
    ];
    const r = derive("rr-1", { nodes: two, configurations: [meshOff], peers: [toRr] });
    expect(r.peers.map((p) => [p.id, p.routeReflectorClient])).toEqual([
      ["10.0.0.1", true],
      ["10.0.0.2", true],
      ["10.0.0.4", false],
    ]);
    // A reflector of another cluster is a client.
    const other = two.map((n) =>
      n.metadata.name === "rr-2"
        ? node(
            "rr-2",
            { ipv4Address: "10.0.0.4/24", routeReflectorClusterID: "244.0.0.2" },
            { "route-reflector": "true" },
          )
        : n,
    );
    expect(
      derive("rr-1", { nodes: other, configurations: [meshOff], peers: [toRr] }).peers.at(-1)!
        .routeReflectorClient,
    ).toBe(true);
  });

  it("with the mesh on, a reflector ignores the mesh and the other nodes leave it out of theirs", () => {
    const r = derive("node-1", { nodes: rrNodes, peers: [toRr] });
    expect(r.peers.map((p) => [p.id, p.scope])).toEqual([
      ["10.0.0.2", "mesh"],
      ["10.0.0.3", "node"],
    ]);
    expect(ids(derive("rr-1", { nodes: rrNodes }))).toEqual([]);
  });

  it("an external iBGP peer of a reflector is a client; an eBGP one is not", () => {
    const r = derive("rr-1", {
      nodes: rrNodes,
      configurations: [meshOff],
      peers: [
        peer("ibgp", { peerIP: "192.0.2.1", asNumber: 64512 }),
        peer("ebgp", { peerIP: "192.0.2.2", asNumber: 65000 }),
      ],
    });
    expect(r.peers.map((p) => [p.id, p.routeReflectorClient])).toEqual([
      ["192.0.2.1", true],
      ["192.0.2.2", false],
    ]);
  });
});

describe("deriveBgpPeers: fields not honoured are reported", () => {
  it("password: the BGPPeer is not configured, and says why", () => {
    const r = derive("node-1", {
      nodes,
      configurations: [meshOff()],
      peers: [
        peer("secret", {
          peerIP: "192.0.2.1",
          asNumber: 65000,
          password: { secretKeyRef: { name: "s", key: "k" } },
        }),
      ],
    });
    expect(r.peers).toEqual([]);
    expect(r.unsupported).toEqual([
      expect.objectContaining({ resource: "BGPPeer secret", field: "spec.password" }),
    ]);
    expect(r.unsupported[0]!.message).toContain("not supported");
  });

  it("numAllowedLocalASNumbers, eBGP keepOriginalNextHop, nodeMeshPassword, log level (service IPs are honoured)", () => {
    const r = derive("node-1", {
      nodes,
      configurations: [
        config("default", {
          serviceClusterIPs: [{ cidr: "10.96.0.0/12" }],
          nodeMeshPassword: { secretKeyRef: { name: "s", key: "k" } },
          logSeverityScreen: "Debug",
        }),
      ],
      peers: [
        peer("tor", {
          peerIP: "192.0.2.1",
          asNumber: 65000,
          numAllowedLocalASNumbers: 1,
          keepOriginalNextHop: true,
        }),
      ],
    });
    expect(r.unsupported.map((u) => `${u.resource} ${u.field}`).sort()).toEqual([
      "BGPConfiguration default spec.logSeverityScreen",
      "BGPConfiguration default spec.nodeMeshPassword",
      "BGPPeer tor spec.keepOriginalNextHop",
      "BGPPeer tor spec.numAllowedLocalASNumbers",
    ]);
    // Reported, but the peer still runs; iBGP keepOriginalNextHop is the speaker's default (honoured).
    expect(ids(r)).toContain("192.0.2.1");
    const ibgp = derive("node-1", {
      nodes,
      peers: [peer("rr", { peerIP: "192.0.2.9", asNumber: 64512, keepOriginalNextHop: true })],
    });
    expect(ibgp.unsupported).toEqual([]);
    expect(ibgp.peers.find((p) => p.id === "192.0.2.9")!.keepOriginalNextHop).toBe(true);
  });

  it("node.<name> may only override listenPort, logSeverityScreen and prefixAdvertisements", () => {
    const r = derive("node-1", {
      nodes,
      configurations: [
        config("node.node-1", { listenPort: 1179, asNumber: 65000, nodeToNodeMeshEnabled: false }),
      ],
    });
    expect(r.listenPort).toBe(1179);
    expect(r.localAsNumber).toBe(64512);
    expect(r.nodeToNodeMesh).toBe(true);
    expect(r.unsupported.map((u) => u.field)).toEqual(["spec.nodeToNodeMeshEnabled", "spec.asNumber"]);
    expect(r.unsupported[0]!.message).toContain("only valid on the default");
  });

  it("prefixAdvertisements resolve named and literal communities; the node's list replaces the default's", () => {
    const def = config("default", {
      communities: [{ name: "big", value: "63400:300:100" }],
      prefixAdvertisements: [{ cidr: "172.218.4.0/26", communities: ["big", "63400:120"] }],
    });
    expect(derive("node-1", { nodes, configurations: [def] }).prefixAdvertisements).toEqual([
      { cidr: "172.218.4.0/26", communities: ["63400:120"], largeCommunities: ["63400:300:100"] },
    ]);
    const mine = config("node.node-1", {
      prefixAdvertisements: [{ cidr: "10.1.0.0/16", communities: ["65000:1"] }],
    });
    expect(derive("node-1", { nodes, configurations: [def, mine] }).prefixAdvertisements).toEqual([
      { cidr: "10.1.0.0/16", communities: ["65000:1"], largeCommunities: [] },
    ]);
  });

  it("an invalid selector is reported and its peering skipped", () => {
    const r = derive("node-1", {
      nodes,
      peers: [peer("bad", { peerSelector: "a ==", nodeSelector: "all()" })],
    });
    expect(r.unsupported[0]).toMatchObject({ resource: "BGPPeer bad", field: "spec.peerSelector" });
  });

  it("is deterministic: the order of the inputs does not change the result", () => {
    const ps = [
      peer("b", { peerIP: "192.0.2.2", asNumber: 65000 }),
      peer("a", { peerIP: "192.0.2.1", asNumber: 65000 }),
    ];
    const one = derive("node-2", { nodes, peers: ps });
    const two = derive("node-2", { nodes: [...nodes].reverse(), peers: [...ps].reverse() });
    expect(two).toEqual(one);
  });
});

function meshOff(): BGPConfiguration {
  return config("default", { nodeToNodeMeshEnabled: false });
}
