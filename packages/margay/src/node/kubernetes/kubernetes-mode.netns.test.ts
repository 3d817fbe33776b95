/**
 * Kubernetes mode in the whole agent (runNodeAgent in-process, dataplane in a namespace this test creates,
 * KUBECONFIG pointing at the fake API server on loopback): the endpoint a pod's ADD writes carries the
 * pod's labels, service account and profiles, so a policy selecting those labels decides the pod's very
 * first packets. A pod the API server does not know gets no endpoint (fail closed).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type WorkloadEndpoint, createRecordingLogger } from "@margay/api";
import { type NetnsLab, createNetnsLab } from "@margay/dataplane/testing";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningAgent, runNodeAgent } from "../agent.js";
import { resolveBootstrapConfig } from "../config/resolve.js";
import { createWorkloadClient } from "../workload/client.js";
import { isWorkloadApiError } from "../workload/errors.js";

const NODE = "k8s-node";
let lab: NetnsLab;
let host: Awaited<ReturnType<NetnsLab["add"]>>;
const pods = new Map<string, Awaited<ReturnType<NetnsLab["add"]>>>();
let stateDir: string;
let api: FakeKubeApiServer;
let agent: RunningAgent | undefined;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  lab = createNetnsLab("mgk8");
  cleanup.push(() => lab.close());
  host = await lab.add("host");
  for (const p of ["web", "client", "other", "ghost"]) pods.set(p, await lab.add(p));
  const r = (argv: string[]) => lab.exec(host, argv);
  await r(["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "ul0"]);
  await r(["ip", "link", "set", "ul0", "up"]);
  await r(["ip", "link", "set", "eth0", "up"]);
  await r(["ip", "addr", "add", "10.79.0.1/24", "dev", "eth0"]);
  stateDir = await mkdtemp(join(tmpdir(), "margay-k8s-mode-"));
  cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
  api = await startFakeKubeApiServer();
  cleanup.push(() => api.close());
  const kubeconfig = join(stateDir, "kubeconfig");
  await writeFile(
    kubeconfig,
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      `- name: fake\n  cluster:\n    server: ${api.url}`,
      "users:",
      "- name: agent\n  user: {}",
      "contexts:",
      "- name: fake\n  context:\n    cluster: fake\n    user: agent",
      "current-context: fake",
      "",
    ].join("\n"),
  );
  const { config, sources } = resolveBootstrapConfig({
    env: {
      NODENAME: NODE,
      DATASTORE_TYPE: "memory",
      MARGAY_STATE_DIR: stateDir,
      MARGAY_NETWORKING_BACKEND: "vxlan",
      IP_AUTODETECTION_METHOD: "interface=eth0",
      MARGAY_IPV4POOL_CIDR: "10.68.0.0/16",
      MARGAY_AGENT_SOCKET: join(stateDir, "run", "agent.sock"),
      MARGAY_HEALTH_ENABLED: "false",
      MARGAY_METRICS_ENABLED: "false",
      KUBECONFIG: kubeconfig,
    },
    hostname: NODE,
  });
  expect(config.kubernetes).toEqual({ kubeconfig });
  agent = await runNodeAgent(config, { logger: createRecordingLogger(), sources, netns: host });
  cleanup.push(() => agent!.stop("cleanup"));
  await agent.ready;
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

function kubePod(name: string, labels: Record<string, string>) {
  return {
    metadata: { name, namespace: "shop", labels },
    spec: { nodeName: NODE, serviceAccountName: "shop-sa", containers: [{ name: "c" }] },
    status: { phase: "Pending" },
  };
}

describe("Kubernetes mode in the running agent", () => {
  it("the endpoint gets the pod's labels at creation; policy on those labels holds from the first packet", async () => {
    const ds = agent!.context()!.datastore;
    api.create("namespaces", { metadata: { name: "shop" } });
    api.create("pods", kubePod("web", { app: "web" }));
    api.create("pods", kubePod("client", { role: "client" }));
    api.create("pods", kubePod("other", { role: "intruder" }));
    // Egress allowed by the namespace's profile; ingress to app=web only from role=client.
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "Profile",
      metadata: { name: "kns.shop" },
      spec: { egress: [{ action: "Allow" }] },
    });
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "web-from-clients", namespace: "shop" },
      spec: {
        selector: "app == 'web'",
        types: ["Ingress"],
        ingress: [{ action: "Allow", protocol: "ICMP", source: { selector: "role == 'client'" } }],
      },
    });
    const client = createWorkloadClient(join(stateDir, "run", "agent.sock"), { timeoutMs: 60_000 });
    const add = (pod: string) =>
      client.add({
        containerId: `ctr-${pod}`,
        ifName: "eth0",
        netns: `/run/netns/${pods.get(pod)!.name}`,
        namespace: "shop",
        pod,
      });
    const web = await add("web");
    const webIp = web.ips[0]!.address.split("/")[0]!;
    const wep = await ds.get<WorkloadEndpoint>({
      kind: "WorkloadEndpoint",
      namespace: "shop",
      name: web.endpoint.name,
    });
    expect(wep.metadata.labels).toMatchObject({
      app: "web",
      "projectcalico.org/namespace": "shop",
      "projectcalico.org/serviceaccount": "shop-sa",
    });
    expect(wep.spec.profiles).toEqual(["kns.shop", "ksa.shop.shop-sa"]);
    // The replies came after the policy for these endpoints was programmed: no waiting, no retrying
    // beyond ping's own (the first echo may wait for neighbour resolution).
    await add("client");
    await add("other");
    const ping = (from: string) =>
      lab.exec(pods.get(from)!, ["ping", "-c", "2", "-i", "0.3", "-W", "2", webIp]).then(
        () => true,
        () => false,
      );
    expect(await ping("client")).toBe(true);
    expect(await ping("other")).toBe(false);
  });

  it("a pod the API server does not know gets no endpoint: pod-not-found, retryable", async () => {
    const client = createWorkloadClient(join(stateDir, "run", "agent.sock"), { timeoutMs: 60_000 });
    const err = await client
      .add({
        containerId: "ctr-ghost",
        ifName: "eth0",
        netns: `/run/netns/${pods.get("ghost")!.name}`,
        namespace: "shop",
        pod: "ghost",
      })
      .catch((e: unknown) => e);
    expect(isWorkloadApiError(err, "pod-not-found")).toBe(true);
    const weps = await agent!.context()!.datastore.list<WorkloadEndpoint>("WorkloadEndpoint");
    expect(weps.items.map((w) => w.spec.pod).sort()).toEqual(["client", "other", "web"]);
  });
});
