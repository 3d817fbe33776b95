import { API_VERSION, type WorkloadEndpoint } from "@margay/api";
import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import {
  createHttpTransport,
  type KubeLease,
  type KubePod,
  microTime,
  workloadEndpointName,
} from "@margay/kube-adapter";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { afterEach, describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import { resolveControllersConfig } from "./config.js";
import { isKubeControllersError, type RunningKubeControllers, runKubeControllers } from "./run.js";

const pod = (name: string, v: string): KubePod => ({
  metadata: { name, namespace: "ns", labels: { app: name, v } },
  spec: { nodeName: "node-1", serviceAccountName: "default" },
  status: { phase: "Running", podIPs: [{ ip: "10.0.0.9" }] },
});

const endpoint = (p: string): WorkloadEndpoint => ({
  apiVersion: API_VERSION,
  kind: "WorkloadEndpoint",
  metadata: { name: workloadEndpointName("node-1", p), namespace: "ns", labels: { app: p } },
  spec: {
    orchestrator: "k8s",
    node: "node-1",
    pod: p,
    endpoint: "eth0",
    ipNetworks: ["10.0.0.9/32"],
    profiles: ["kns.ns"],
    interfaceName: "mgy0123456789ab",
  },
});

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const config = (identity: string) =>
  resolveControllersConfig({
    KUBECONFIG: "/unused",
    ETCD_ENDPOINTS: "http://127.0.0.1:1",
    ENABLED_CONTROLLERS: "workloadendpoint,namespace",
    MARGAY_HEALTH_HOST: "127.0.0.1",
    MARGAY_HEALTH_PORT: "0",
    MARGAY_METRICS_HOST: "127.0.0.1",
    MARGAY_METRICS_PORT: "0",
    POD_NAME: identity,
    MARGAY_LEADER_ELECTION_NAMESPACE: "margay-system",
    MARGAY_LEADER_ELECTION_LEASE_DURATION: "2s",
    MARGAY_LEADER_ELECTION_RENEW_DEADLINE: "1500ms",
    MARGAY_LEADER_ELECTION_RETRY_PERIOD: "300ms",
  });

describe("runKubeControllers", () => {
  let server: FakeKubeApiServer | undefined;
  const running: RunningKubeControllers[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((r) => r.stop()));
    await server?.close();
    server = undefined;
  });

  const start = (ds: Datastore, identity: string) => {
    const r = runKubeControllers(config(identity), {
      datastore: ds,
      transport: createHttpTransport({ server: server!.url }),
      backoff: { initialMs: 10, maxMs: 200 },
    });
    running.push(r);
    return r;
  };
  const labelV = async (ds: Datastore, p: string) =>
    (
      await ds.get<WorkloadEndpoint>({
        kind: "WorkloadEndpoint",
        namespace: "ns",
        name: workloadEndpointName("node-1", p),
      })
    ).metadata.labels?.v;
  const get = async (url: string) => {
    const res = await fetch(url);
    return { status: res.status, text: await res.text() };
  };

  it("one replica leads, the other stands by; a stopped leader releases the Lease and the standby carries on", async () => {
    server = await startFakeKubeApiServer({ bookmarkIntervalMs: 100 });
    const ds = createMemoryDatastore({ validate: apiValidator });
    server.create("namespaces", { metadata: { name: "ns", labels: { team: "a" } } });
    server.create("pods", pod("a", "1"));
    await ds.create(endpoint("a"));

    const a = start(ds, "kc-a");
    await a.ready;
    await a.whenLeadingAndSynced();
    const b = start(ds, "kc-b");
    await b.ready;
    expect([a.isLeader, b.isLeader]).toEqual([true, false]);
    const lease = server.get("leases", "margay-system", "margay-kube-controllers") as KubeLease;
    expect(lease.spec?.holderIdentity).toBe("kc-a");
    await waitFor(async () => (await labelV(ds, "a")) === "1", "the leader's first pass");
    expect((await ds.list("Profile")).items.map((p) => p.metadata.name)).toEqual(["kns.ns"]);

    // Both serve health (a standby is ready: it has nothing to serve but must not be restarted), and
    // metrics that say who leads.
    for (const r of [a, b]) {
      const h = r.ops()!.health!;
      expect((await get(`http://127.0.0.1:${h.port}/readyz`)).status).toBe(200);
    }
    const ma = await get(`http://127.0.0.1:${a.ops()!.metrics!.port}/metrics`);
    expect(ma.text).toMatch(/^margay_kube_controllers_is_leader 1$/m);
    expect(ma.text).toMatch(/^margay_kube_controllers_endpoint_updates_total\{result="updated"\} 1$/m);
    expect(ma.text).toMatch(/^margay_kube_controllers_component_ready\{component="workloadendpoint"\} 1$/m);
    expect(ma.text).toContain("margay_kube_controllers_process_cpu_seconds_total");
    const mb = await get(`http://127.0.0.1:${b.ops()!.metrics!.port}/metrics`);
    expect(mb.text).toMatch(/^margay_kube_controllers_is_leader 0$/m);

    // The leader stops: the Lease is released and the standby takes over within a few retry periods.
    const t0 = Date.now();
    await a.stop();
    await b.whenLeadingAndSynced();
    console.log(`standby took over ${Date.now() - t0} ms after the leader stopped`);
    expect(b.isLeader).toBe(true);
    server.update("pods", pod("a", "2"));
    await waitFor(async () => (await labelV(ds, "a")) === "2", "the new leader's update");
  });

  it("a leader whose Lease is taken stops its controllers and ends with leadership-lost", async () => {
    server = await startFakeKubeApiServer({ bookmarkIntervalMs: 100 });
    const ds = createMemoryDatastore({ validate: apiValidator });
    server.create("pods", pod("a", "1"));
    await ds.create(endpoint("a"));
    const a = start(ds, "kc-a");
    await a.ready;
    await a.whenLeadingAndSynced();
    let ended: unknown;
    void a.done.catch((e: unknown) => {
      ended = e;
    });
    // Another holder takes the Lease (an operator, or a partitioned leader's successor) and keeps it.
    const steal = () => {
      const lease = server!.get("leases", "margay-system", "margay-kube-controllers") as KubeLease;
      server!.update("leases", {
        ...lease,
        spec: { ...lease.spec, holderIdentity: "kc-thief", renewTime: microTime(Date.now()) },
      });
    };
    steal();
    const keep = setInterval(steal, 200);
    try {
      await waitFor(() => ended !== undefined, "leadership lost", 10_000);
    } finally {
      clearInterval(keep);
    }
    expect(isKubeControllersError(ended)).toBe(true);
    expect(ended).toMatchObject({ code: "leadership-lost", retryable: true });
    expect(a.isLeader).toBe(false);
    expect(a.controllers()).toBeUndefined();
    // Its controllers no longer write, not even once the thief's Lease expires and this process could
    // take it again: a deposed replica exits (the CLI stops it) and never leads twice.
    server.update("pods", pod("a", "9"));
    await new Promise((r) => setTimeout(r, 3_000));
    expect(a.controllers()).toBeUndefined();
    expect(await labelV(ds, "a")).toBe("1");
  });

  it("without leader election the controllers start at once; a bad kubeconfig fails startup", async () => {
    server = await startFakeKubeApiServer({ bookmarkIntervalMs: 100 });
    const ds = createMemoryDatastore({ validate: apiValidator });
    const r = runKubeControllers(
      { ...config("kc-x"), leaderElection: { ...config("kc-x").leaderElection, enabled: false } },
      { datastore: ds, transport: createHttpTransport({ server: server.url }) },
    );
    running.push(r);
    await r.ready;
    expect(r.isLeader).toBe(true);
    expect(server.list("leases")).toEqual([]);

    const bad = runKubeControllers(
      { ...config("kc-y"), kubeApi: { kind: "kubeconfig", path: "/nonexistent/kubeconfig" } },
      { datastore: ds },
    );
    running.push(bad);
    await expect(bad.ready).rejects.toMatchObject({ code: "config" });
  });
});
