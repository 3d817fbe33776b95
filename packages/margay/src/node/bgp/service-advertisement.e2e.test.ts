/**
 * End to end, seen at a BIRD top-of-rack peer: three hosts of the cluster lab run real `margay-node`
 * processes (the bundle built from this work tree) in Kubernetes mode against the project's fake API server
 * (started here, reached from the hosts' namespaces through a forwarder in the etcd namespace). Every host
 * advertises the BGPConfiguration's service ranges; an `externalTrafficPolicy: Local` service's cluster,
 * external and load-balancer IPs come as host routes only from the hosts that run one of its endpoints, and
 * follow the endpoints as they move; a `Cluster` service gets no host route. One lab for the file.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_VERSION } from "@margay/api";
import type { Datastore, StoredObject } from "@margay/datastore";
import type { KubeEndpointSlice } from "@margay/kube-adapter";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BirdPeer } from "../../testing/bird-peer.js";
import {
  type ClusterLab,
  createClusterLab,
  LAB_ADDRESSES,
  type LabPod,
  waitFor,
} from "../../testing/index.js";
import { nsArgv, terminate } from "../../testing/process.js";
import { buildMargayNodeBundle } from "../config/build-bundle.js";
import { pool } from "../e2e-support.js";

const API_PORT = 6443;
const CLUSTER_IPS = "10.96.0.0/12";
const EXTERNAL_IPS = "192.0.2.0/24";
const LB_IPS = "198.51.100.0/24";
const RANGES = [CLUSTER_IPS, EXTERNAL_IPS, LB_IPS];
const LOCAL_IPS = ["10.96.0.10/32", "192.0.2.7/32", "198.51.100.9/32"];

// In the etcd namespace (on the underlay): TCP API_PORT forwarded to a unix socket the test serves.
const FORWARDER = `
const net = require("node:net");
const [host, port, sock] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(sock);
  c.pipe(u); u.pipe(c);
  c.on("error", () => u.destroy()); u.on("error", () => c.destroy());
  c.on("close", () => u.destroy()); u.on("close", () => c.destroy());
}).listen(Number(port), host, () => process.stdout.write("ready\\n"));
`;

describe("service IP advertisement (3 hosts, Kubernetes mode, BIRD peer)", () => {
  let dir: string;
  let api: FakeKubeApiServer;
  let lab: ClusterLab;
  let ds: Datastore;
  let tor: BirdPeer;
  let forwarder: ChildProcess | undefined;
  let bridge: Server | undefined;
  const sockets = new Set<Socket>();
  const pods: LabPod[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "margay-svc-adv-"));
    const agentBinary = (await buildMargayNodeBundle(join(dir, "margay-node.cjs"))).path;
    api = await startFakeKubeApiServer();
    const kubeconfig = join(dir, "kubeconfig");
    await writeFile(
      kubeconfig,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        `- name: lab\n  cluster:\n    server: http://${LAB_ADDRESSES.etcd}:${API_PORT}`,
        "users:",
        "- name: node\n  user: {}",
        "contexts:",
        "- name: lab\n  context:\n    cluster: lab\n    user: node",
        "current-context: lab",
        "",
      ].join("\n"),
    );
    lab = await createClusterLab({
      hosts: 3,
      prefix: "mgsv",
      startAgents: false,
      agentBinary,
      agentEnv: {
        MARGAY_NETWORKING_BACKEND: "bgp",
        NO_DEFAULT_POOLS: "true",
        MARGAY_STATUS_INTERVAL: "1s",
        KUBECONFIG: kubeconfig,
      },
    });
    try {
      // The fake API server, reachable from the hosts at etcd's address.
      const sock = join(dir, "kube-api.sock");
      bridge = createServer((c) => {
        const u = connect(Number(new URL(api.url).port), "127.0.0.1");
        for (const s of [c, u]) {
          sockets.add(s);
          s.on("close", () => sockets.delete(s));
          s.on("error", () => s.destroy());
        }
        c.pipe(u);
        u.pipe(c);
        c.on("close", () => u.destroy());
        u.on("close", () => c.destroy());
      });
      await new Promise<void>((resolve, reject) => {
        bridge!.once("error", reject);
        bridge!.listen(sock, () => resolve());
      });
      const argv = nsArgv(`${lab.name}-etcd`, [
        process.execPath,
        "-e",
        FORWARDER,
        LAB_ADDRESSES.etcd,
        String(API_PORT),
        sock,
      ]);
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: {} });
      forwarder = child;
      await new Promise<void>((resolve, reject) => {
        child.once("exit", (c) => reject(new Error(`API forwarder exited (${c})`)));
        child.stdout?.once("data", () => resolve());
      });

      ds = lab.datastore();
      await ds.create(pool("flat", "10.244.0.0/16"));
      await ds.create({
        apiVersion: API_VERSION,
        kind: "BGPConfiguration",
        metadata: { name: "default" },
        spec: {
          serviceClusterIPs: [{ cidr: CLUSTER_IPS }],
          serviceExternalIPs: [{ cidr: EXTERNAL_IPS }],
          serviceLoadBalancerIPs: [{ cidr: LB_IPS }],
        },
      } as StoredObject);
      for (const h of lab.hosts) lab.startAgent(h);
      for (const h of lab.hosts) await lab.waitReady(h);
      tor = await lab.addBirdPeer({ asNumber: 64513 });
      await ds.create({
        apiVersion: API_VERSION,
        kind: "BGPPeer",
        metadata: { name: "tor" },
        spec: { peerIP: tor.address, asNumber: 64513 },
      } as StoredObject);
      await waitFor(
        "BIRD's sessions to every host Established",
        async () => {
          const s = Object.values(await tor.sessions());
          return s.length === lab.hosts.length && s.every((x) => x === "Established");
        },
        { timeoutMs: 90_000, describe: async () => JSON.stringify(await tor.sessions()) },
      );
    } catch (e) {
      const logs = await Promise.all(
        lab.hosts.map(async (h) => `--- ${h.name}\n${(await lab.logs(h)).slice(-3000)}`),
      );
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${logs.join("\n")}`, { cause: e });
    }
  }, 300_000);

  afterAll(async () => {
    await tor?.close().catch(() => undefined);
    await lab?.close().catch(() => undefined);
    if (forwarder !== undefined) await terminate(forwarder, "SIGKILL", 2_000).catch(() => undefined);
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => (bridge === undefined ? r() : bridge.close(() => r())));
    await api?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Host names whose path for `prefix` BIRD holds (each host is one BIRD protocol, next hop its own address). */
  async function sources(prefix: string): Promise<string[]> {
    const paths = await tor.paths();
    return lab.hosts
      .filter((h) => paths.some((p) => p.prefix === prefix && p.protocol === h.name && p.nextHop === h.ip))
      .map((h) => h.name)
      .sort();
  }

  /** Waits until BIRD's view of every prefix is `want` (host names per prefix), then checks it holds. */
  async function expectAdvertised(want: Record<string, readonly string[]>): Promise<void> {
    const seen = async () =>
      Object.fromEntries(
        await Promise.all(Object.keys(want).map(async (p) => [p, await sources(p)] as const)),
      );
    const matches = async () => JSON.stringify(await seen()) === JSON.stringify(want);
    await waitFor(`BIRD to see ${JSON.stringify(want)}`, matches, {
      timeoutMs: 60_000,
      describe: async () => JSON.stringify(await seen()),
    });
    // A host that should not advertise would do so in the same reconciliation round: look again a few times.
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 300));
      expect(await seen()).toEqual(want);
    }
  }

  const all = () => lab.hosts.map((h) => h.name).sort();

  function endpointSlice(name: string, service: string, on: readonly LabPod[]): KubeEndpointSlice {
    return {
      metadata: { name, namespace: "shop", labels: { "kubernetes.io/service-name": service } },
      addressType: "IPv4",
      endpoints: on.map((p) => ({
        addresses: [p.ip],
        nodeName: p.host.name,
        conditions: { ready: true },
        targetRef: { kind: "Pod", namespace: "shop", name: p.name },
      })),
    };
  }

  it("every host advertises the service ranges", async () => {
    await expectAdvertised(Object.fromEntries(RANGES.map((r) => [r, all()])));
  });

  it("an externalTrafficPolicy: Local service's IPs come as /32 only from the host running its endpoint", async () => {
    api.create("namespaces", { metadata: { name: "shop" } });
    const [h1, , h3] = lab.hosts;
    for (const [name, host] of [
      ["web-0", h1!],
      ["web-1", h3!],
    ] as const) {
      api.create("pods", {
        metadata: { name, namespace: "shop", labels: { app: "web" } },
        spec: { nodeName: host.name, containers: [{ name: "c" }] },
      });
      // Through the agent's Kubernetes mode: the pod is read from the API server at ADD.
      pods.push(await lab.addPod(host, { namespace: "shop", name, pools: ["flat"] }));
    }
    api.create("services", {
      metadata: { name: "web", namespace: "shop" },
      spec: {
        type: "LoadBalancer",
        clusterIP: "10.96.0.10",
        clusterIPs: ["10.96.0.10"],
        externalIPs: ["192.0.2.7"],
        externalTrafficPolicy: "Local",
        selector: { app: "web" },
        ports: [{ port: 80 }],
      },
      status: { loadBalancer: { ingress: [{ ip: "198.51.100.9" }] } },
    });
    api.create("endpointslices", endpointSlice("web-a", "web", [pods[0]!]));
    // A Cluster service with an endpoint: covered by the range, no host route from anyone.
    api.create("services", {
      metadata: { name: "spread", namespace: "shop" },
      spec: {
        type: "NodePort",
        clusterIP: "10.96.0.11",
        externalTrafficPolicy: "Cluster",
        ports: [{ port: 80 }],
      },
    });
    api.create("endpointslices", endpointSlice("spread-a", "spread", [pods[1]!]));
    await expectAdvertised({
      ...Object.fromEntries(RANGES.map((r) => [r, all()])),
      ...Object.fromEntries(LOCAL_IPS.map((p) => [p, [h1!.name]])),
      "10.96.0.11/32": [],
    });
  });

  it("the host routes follow the endpoints; deleting the service withdraws them and keeps the ranges", async () => {
    const [h1, , h3] = lab.hosts;
    api.update("endpointslices", endpointSlice("web-a", "web", [pods[0]!, pods[1]!]));
    await expectAdvertised(Object.fromEntries(LOCAL_IPS.map((p) => [p, [h1!.name, h3!.name].sort()])));
    // web-0 not ready any more: only h3 still runs a ready endpoint.
    const moved = endpointSlice("web-a", "web", [pods[0]!, pods[1]!]);
    moved.endpoints![0]!.conditions = { ready: false };
    api.update("endpointslices", moved);
    await expectAdvertised(Object.fromEntries(LOCAL_IPS.map((p) => [p, [h3!.name]])));
    api.delete("services", "shop", "web");
    await expectAdvertised({
      ...Object.fromEntries(RANGES.map((r) => [r, all()])),
      ...Object.fromEntries(LOCAL_IPS.map((p) => [p, []])),
    });
  });
});
