/**
 * Valid example resources of every kind, shared by tests (not exported from the package).
 *
 * @packageDocumentation
 */
const v = "margay.io/v1";

/** One valid, fully featured example per kind. */
export const validExamples: Record<string, Record<string, unknown>> = {
  IPPool: {
    apiVersion: v,
    kind: "IPPool",
    metadata: { name: "pool-a", labels: { zone: "a" } },
    spec: {
      cidr: "10.244.0.0/16",
      blockSize: 26,
      vxlanMode: "CrossSubnet",
      natOutgoing: true,
      nodeSelector: "zone == 'a'",
    },
  },
  IPPool6: {
    apiVersion: v,
    kind: "IPPool",
    metadata: { name: "pool-v6" },
    spec: { cidr: "fd00:10:244::/64", blockSize: 122, allowedUses: ["Workload"] },
  },
  IPAMConfig: {
    apiVersion: v,
    kind: "IPAMConfig",
    metadata: { name: "default" },
    spec: { strictAffinity: true, autoAllocateBlocks: true, maxBlocksPerHost: 4 },
  },
  IPReservation: {
    apiVersion: v,
    kind: "IPReservation",
    metadata: { name: "reserved" },
    spec: { reservedCIDRs: ["10.244.0.0/30", "10.244.1.7"] },
  },
  Node: {
    apiVersion: v,
    kind: "Node",
    metadata: { name: "node-1" },
    spec: {
      bgp: {
        asNumber: 64512,
        ipv4Address: "192.168.1.10/24",
        ipv6Address: "fd00::10/64",
        routeReflectorClusterID: "224.0.0.1",
      },
      ipv4VXLANTunnelAddr: "10.244.3.0",
      vxlanTunnelMACAddr: "66:0a:7f:2b:30:41",
      addresses: [{ address: "192.168.1.10", type: "InternalIP" }],
      orchRefs: [{ orchestrator: "k8s", nodeName: "node-1" }],
    },
  },
  WorkloadEndpoint: {
    apiVersion: v,
    kind: "WorkloadEndpoint",
    metadata: { name: "node--1-k8s-web--0-eth0", namespace: "prod", labels: { app: "web" } },
    spec: {
      orchestrator: "k8s",
      node: "node-1",
      pod: "web-0",
      endpoint: "eth0",
      containerID: "abc123",
      interfaceName: "cali0123456789a",
      ipNetworks: ["10.244.3.5/32", "fd00:10:244::5/128"],
      profiles: ["kns.prod"],
      mac: "ee:ee:ee:ee:ee:ee",
      ports: [{ name: "http", protocol: "TCP", port: 8080 }],
    },
  },
  HostEndpoint: {
    apiVersion: v,
    kind: "HostEndpoint",
    metadata: { name: "node-1-eth0", labels: { role: "host" } },
    spec: {
      node: "node-1",
      interfaceName: "eth0",
      expectedIPs: ["192.168.1.10"],
      ports: [{ name: "ssh", protocol: "TCP", port: 22 }],
    },
  },
  Profile: {
    apiVersion: v,
    kind: "Profile",
    metadata: { name: "kns.prod" },
    spec: {
      ingress: [{ action: "Allow" }],
      egress: [{ action: "Allow" }],
      labelsToApply: { "pcns.name": "prod" },
    },
  },
  Tier: {
    apiVersion: v,
    kind: "Tier",
    metadata: { name: "security" },
    spec: { order: 100, defaultAction: "Pass" },
  },
  NetworkPolicy: {
    apiVersion: v,
    kind: "NetworkPolicy",
    metadata: { name: "allow-web", namespace: "prod" },
    spec: {
      tier: "default",
      order: 10,
      selector: "app == 'web'",
      types: ["Ingress", "Egress"],
      ingress: [
        {
          action: "Allow",
          protocol: "TCP",
          source: { selector: "role == 'frontend'", namespaceSelector: "global()" },
          destination: { ports: [80, "8000:8080", "http"] },
        },
        { action: "Allow", protocol: "ICMP", icmp: { type: 8, code: 0 }, ipVersion: 4 },
        { action: "Deny", source: { nets: ["192.168.0.0/16"], notNets: ["192.168.1.0/24"] } },
      ],
      egress: [{ action: "Allow", protocol: "UDP", destination: { ports: [53] } }],
    },
  },
  GlobalNetworkPolicy: {
    apiVersion: v,
    kind: "GlobalNetworkPolicy",
    metadata: { name: "security.host-guard" },
    spec: {
      tier: "security",
      order: 1,
      selector: "has(role)",
      namespaceSelector: "projectcalico.org/name != 'kube-system'",
      preDNAT: true,
      applyOnForward: true,
      ingress: [{ action: "Deny", protocol: 6, destination: { notPorts: [22] } }],
    },
  },
  NetworkSet: {
    apiVersion: v,
    kind: "NetworkSet",
    metadata: { name: "partners", namespace: "prod", labels: { kind: "partner" } },
    spec: { nets: ["203.0.113.0/24", "2001:db8::/32"] },
  },
  GlobalNetworkSet: {
    apiVersion: v,
    kind: "GlobalNetworkSet",
    metadata: { name: "internet" },
    spec: { nets: ["0.0.0.0/0"] },
  },
  BGPPeer: {
    apiVersion: v,
    kind: "BGPPeer",
    metadata: { name: "tor" },
    spec: {
      nodeSelector: "rack == 'r1'",
      peerIP: "192.168.1.1:1179",
      asNumber: "1.10",
      keepOriginalNextHop: true,
      password: { secretKeyRef: { name: "bgp", key: "tor" } },
      maxRestartTime: "2m",
    },
  },
  BGPConfiguration: {
    apiVersion: v,
    kind: "BGPConfiguration",
    metadata: { name: "default" },
    spec: {
      nodeToNodeMeshEnabled: false,
      asNumber: 65000,
      listenPort: 1179,
      serviceClusterIPs: [{ cidr: "10.96.0.0/12" }],
      communities: [{ name: "edge", value: "65000:100" }],
      prefixAdvertisements: [{ cidr: "10.244.0.0/16", communities: ["edge", "65000:1:2"] }],
    },
  },
  AgentConfiguration: {
    apiVersion: v,
    kind: "AgentConfiguration",
    metadata: { name: "node.node-1" },
    spec: {
      logSeverityScreen: "Debug",
      vxlanPort: 4790,
      failsafeInboundHostPorts: [{ protocol: "tcp", port: 22 }],
      routeRefreshInterval: "30s",
    },
  },
  NodeStatus: {
    apiVersion: v,
    kind: "NodeStatus",
    metadata: { name: "node-1" },
    spec: { node: "node-1" },
    status: {
      agent: {
        version: "0.1.0",
        startedAt: "2026-01-02T03:04:05.000Z",
        ready: false,
        components: [
          { name: "datastore", live: true, ready: true },
          { name: "bgp", live: true, ready: false, reason: "BGP peer 10.0.0.5: TCP 179 refused" },
        ],
      },
      addresses: { ipv4: "10.0.0.1/24", ipv6: "fd00::1/64", interface: "eth0" },
      mtu: 1450,
      dataplane: { inSync: true, lastApply: "2026-01-02T03:04:06.000Z" },
      bgp: {
        peers: [
          {
            address: "10.0.0.5",
            asNumber: 64512,
            type: "NodeMesh",
            state: "Active",
            since: "2026-01-02T03:04:05.000Z",
            lastError: "TCP 179 refused",
            routesImported: 0,
            routesExported: 0,
          },
        ],
      },
      updatedAt: "2026-01-02T03:04:07.000Z",
    },
  },
};
