import { lstat, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WorkloadEndpoint } from "@margay/api";
import { WORKLOAD_GATEWAY_V4, WORKLOAD_GATEWAY_V6 } from "@margay/dataplane";
import { type Datastore, createMemoryDatastore, unavailableError } from "@margay/datastore";
import { POD_CIDRS_ANNOTATION, workloadEndpointName as kubeAdapterName } from "@margay/kube-adapter";
import { createIpam } from "@margay/ipam";
import { LABEL_NAMESPACE, LABEL_ORCHESTRATOR } from "@margay/policy";
import { afterEach, describe, expect, it } from "vitest";
import { createWorkloadClient } from "./client.js";
import { IFNAME_ANNOTATION, workloadEndpointName, workloadHandleId } from "./endpoint.js";
import { type WorkloadApiError, isWorkloadApiError } from "./errors.js";
import { startWorkloadApi } from "./server.js";
import { NODE_POD_CIDRS_ANNOTATION } from "./protocol.js";
import { delSpoolDir, spoolDel } from "./spool.js";
import {
  type Harness,
  NODE,
  addPool,
  addRequest,
  fakeContext,
  fakePipeline,
  fakePlumber,
  startHarness,
} from "./test-support.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const weps = async (ds: Datastore) => (await ds.list<WorkloadEndpoint>("WorkloadEndpoint")).items;
const client = (x: Harness) => createWorkloadClient(x.socketPath, { timeoutMs: 10_000 });

/** Leaves a socket file nobody listens on: a process that binds it and is killed (SIGKILL unlinks nothing). */
function deadListener(path: string): void {
  spawnSync(process.execPath, [
    "-e",
    "require('node:net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))",
    path,
  ]);
}

/** A promise the test resolves by hand. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
}

describe("workload API: add", () => {
  it("allocates, plumbs, writes the endpoint as Calico names it, waits until programmed, replies", async () => {
    h = await startHarness();
    const reply = await client(h).add(addRequest("web-1", { labels: { app: "web" } }));
    const name = `${NODE.replace("-", "--")}-k8s-web--1-eth0`;
    expect(reply.endpoint).toMatchObject({ namespace: "default", name });
    expect(reply.ips).toHaveLength(1);
    expect(reply.ips[0]!.address).toMatch(/^10\.70\.0\.\d+\/32$/);
    expect(reply.ips[0]).toMatchObject({ gateway: WORKLOAD_GATEWAY_V4, interface: 1 });
    expect(reply.routes).toEqual([{ dst: "0.0.0.0/0", gw: WORKLOAD_GATEWAY_V4 }]);
    expect(reply.hostInterface).toBe(h.plumber.hostIfName({ namespace: "default", workload: "web-1" }));
    expect(reply.interfaces).toEqual([
      { name: reply.hostInterface, mac: "ee:ee:ee:ee:ee:ee" },
      { name: "eth0", mac: reply.mac, sandbox: "/var/run/netns/web-1" },
    ]);
    // The endpoint, as the policy package and the dataplane expect it.
    const [wep] = await weps(h.datastore);
    expect(wep!.metadata).toMatchObject({
      name,
      namespace: "default",
      labels: { app: "web", [LABEL_NAMESPACE]: "default", [LABEL_ORCHESTRATOR]: "k8s" },
      annotations: { [IFNAME_ANNOTATION]: "eth0" },
    });
    expect(wep!.spec).toMatchObject({
      orchestrator: "k8s",
      node: NODE,
      pod: "web-1",
      endpoint: "eth0",
      containerID: "c-web-1",
      ipNetworks: [reply.ips[0]!.address],
      profiles: ["kns.default"],
      interfaceName: reply.hostInterface,
      mac: reply.mac,
    });
    // Waited for exactly that endpoint at that revision.
    expect(h.pipeline.calls).toEqual([{ key: `default/${name}`, revision: wep!.metadata.resourceVersion }]);
    expect(reply.endpoint.revision).toBe(wep!.metadata.resourceVersion);
    // Plumbed with the agent's MTU and the allocated address; IPAM holds it under the attachment's handle.
    const spec = h.plumber.links.get(reply.hostInterface)!;
    expect(spec).toMatchObject({ mtu: 1450, containerIfName: "eth0", addresses: [reply.ips[0]!.address] });
    expect(spec.containerNetns).toEqual({ kind: "path", path: "/var/run/netns/web-1" });
    expect(await h.ipam.ipsByHandle(workloadHandleId("c-web-1", "eth0"))).toEqual([
      reply.ips[0]!.address.split("/")[0],
    ]);
  });

  it("names endpoints exactly as kube-adapter does (the two writers of one endpoint agree)", () => {
    for (const [node, pod, ep] of [
      ["node-a", "web-1", "eth0"],
      ["n", "a--b", "net-1"],
      ["host.example.com", "x", "eth0"],
    ] as const) {
      expect(workloadEndpointName(node, "k8s", pod, ep)).toBe(kubeAdapterName(node, pod, ep));
    }
  });

  it("is idempotent per (containerId, ifName): a repeated add returns the same addresses and writes nothing", async () => {
    h = await startHarness();
    const c = client(h);
    const a = await c.add(addRequest("p"));
    const b = await c.add(addRequest("p"));
    expect(b.ips).toEqual(a.ips);
    expect(b.endpoint.revision).toBe(a.endpoint.revision);
    expect(await h.inUse()).toBe(1);
    expect(await weps(h.datastore)).toHaveLength(1);
  });

  it("a second interface of the same container is a second attachment", async () => {
    h = await startHarness();
    const c = client(h);
    const a = await c.add(addRequest("p"));
    const b = await c.add(addRequest("p", { ifName: "net1" }));
    expect(b.ips[0]!.address).not.toBe(a.ips[0]!.address);
    expect(b.hostInterface).not.toBe(a.hostInterface);
    expect((await weps(h.datastore)).map((w) => w.metadata.name).sort()).toEqual([
      "node--a-k8s-p-eth0",
      "node--a-k8s-p-net1",
    ]);
  });

  it("dual stack: one address per family with the plumber's gateways and default routes", async () => {
    h = await startHarness({ pools: "dual" });
    const r = await client(h).add(addRequest("d"));
    expect(r.ips.map((i) => [i.address.endsWith("/32") ? 4 : 6, i.gateway])).toEqual([
      [4, WORKLOAD_GATEWAY_V4],
      [6, WORKLOAD_GATEWAY_V6],
    ]);
    expect(r.routes).toEqual([
      { dst: "0.0.0.0/0", gw: WORKLOAD_GATEWAY_V4 },
      { dst: "::/0", gw: WORKLOAD_GATEWAY_V6 },
    ]);
  });

  it("honours requested addresses, pools, mac and mtu", async () => {
    h = await startHarness();
    await addPool(h.datastore, "other", { cidr: "10.71.0.0/24", blockSize: 28, assignmentMode: "Manual" });
    const c = client(h);
    const a = await c.add(addRequest("a", { ips: ["10.70.0.77"], mac: "02:00:00:00:00:aa", mtu: 1400 }));
    expect(a.ips.map((i) => i.address)).toEqual(["10.70.0.77/32"]);
    expect(a.mac).toBe("02:00:00:00:00:aa");
    expect(h.plumber.links.get(a.hostInterface)).toMatchObject({ mtu: 1400, mac: "02:00:00:00:00:aa" });
    const b = await c.add(addRequest("b", { pools: ["other"] }));
    expect(b.ips[0]!.address).toMatch(/^10\.71\.0\.\d+\/32$/);
    // A requested address held by another attachment.
    await expect(c.add(addRequest("x", { ips: ["10.70.0.77"] }))).rejects.toMatchObject({
      code: "address-unavailable",
      details: expect.objectContaining({ reason: "already-allocated" }),
    });
    // An unknown pool is a configuration error naming the field.
    await expect(c.add(addRequest("y", { pools: ["nope"] }))).rejects.toMatchObject({
      code: "invalid-field",
      details: expect.objectContaining({ field: "pools[0]" }),
    });
    expect(await h.inUse()).toBe(2);
  });

  it("a pod without a pod name is a cni workload named after its container", async () => {
    h = await startHarness();
    const r = await client(h).add({ containerId: "abc123", ifName: "eth0", netns: "/proc/1/ns/net" });
    expect(r.endpoint.name).toBe("node--a-cni-abc123-eth0");
    const [wep] = await weps(h.datastore);
    expect(wep!.spec).toMatchObject({ orchestrator: "cni", workload: "abc123" });
    expect(wep!.metadata.labels?.[LABEL_ORCHESTRATOR]).toBe("cni");
  });

  it("a new sandbox of the same pod takes the endpoint over; the old sandbox's del leaves it alone", async () => {
    h = await startHarness();
    const c = client(h);
    await c.add(addRequest("p", { containerId: "old" }));
    const fresh = await c.add(addRequest("p", { containerId: "new" }));
    const [wep] = await weps(h.datastore);
    expect(wep!.spec.containerID).toBe("new");
    const gone = await c.del({ containerId: "old", ifName: "eth0", namespace: "default", pod: "p" });
    expect(gone).toMatchObject({ endpointDeleted: false, interfaceRemoved: false });
    expect(gone.released).toHaveLength(1);
    expect((await weps(h.datastore))[0]!.spec.containerID).toBe("new");
    expect(h.plumber.links.has(fresh.hostInterface)).toBe(true);
    expect(await h.inUse()).toBe(1);
  });

  it("records step durations and request counts", async () => {
    h = await startHarness();
    await client(h).add(addRequest("m"));
    await client(h)
      .add(addRequest("m", { netns: "/var/run/netns/missing" }))
      .catch(() => undefined);
    const text = await h.metrics.metrics();
    for (const step of ["ipam", "plumb", "endpoint-write", "programmed", "total"]) {
      expect(text).toContain(`margay_workload_add_seconds_count{step="${step}"} 1`);
    }
    expect(text).toContain('margay_workload_requests_total{verb="add",result="ok"} 1');
    expect(text).toContain('margay_workload_requests_total{verb="add",result="netns-not-found"} 1');
  });

  it("records the steps of a del", async () => {
    h = await startHarness();
    const added = await client(h).add(addRequest("m"));
    await client(h).del({ containerId: "c-m", ifName: "eth0", namespace: "default", pod: "m" });
    const text = await h.metrics.metrics();
    for (const step of ["endpoint", "veth", "ipam", "total"]) {
      expect(text).toContain(`margay_workload_del_seconds_count{step="${step}"} 1`);
    }
    expect(h.plumber.removed).toEqual([added.hostInterface]);
  });
});

describe("workload API: readiness", () => {
  it("refuses adds with retryable not-ready until the pipeline is in sync; status says why", async () => {
    h = await startHarness();
    h.pipeline.inSync = false;
    const c = client(h);
    const err = await c.add(addRequest("p")).catch((e: unknown) => e);
    expect(isWorkloadApiError(err, "not-ready")).toBe(true);
    expect((err as WorkloadApiError).retryable).toBe(true);
    const st = await c.status();
    expect(st).toMatchObject({ apiVersion: "v1", node: NODE, ready: false, mtu: 1450 });
    expect(st.reason).toMatch(/not in sync/);
    expect(await h.inUse()).toBe(0);
    h.pipeline.inSync = true;
    expect((await c.status()).ready).toBe(true);
    await c.add(addRequest("p"));
  });

  it("reports health component workload-api and turns not ready when closed", async () => {
    h = await startHarness();
    expect(h.health.reports.get("workload-api")).toEqual({ live: true, ready: true });
    await h.api.close();
    expect(h.health.reports.get("workload-api")).toMatchObject({ ready: false });
  });
});

describe("workload API: rollback", () => {
  const nothingLeft = async (x: Harness) => {
    expect(await x.inUse()).toBe(0);
    expect(await weps(x.datastore)).toEqual([]);
    expect([...x.plumber.links.keys()]).toEqual([]);
  };

  it("IPAM failure: pool exhausted, typed 409, nothing left", async () => {
    h = await startHarness({ pools: "none" });
    await addPool(h.datastore, "one", { cidr: "10.72.0.9/32", blockSize: 32 });
    const c = client(h);
    await c.add(addRequest("first"));
    const err = await c.add(addRequest("second")).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "pool-exhausted", retryable: false });
    expect(await h.inUse()).toBe(1);
    expect(await weps(h.datastore)).toHaveLength(1);
    expect(h.plumber.links.size).toBe(1);
  });

  it("no pool for the node: no-pools", async () => {
    h = await startHarness({ pools: "none" });
    await addPool(h.datastore, "elsewhere", { cidr: "10.73.0.0/24", nodeSelector: "zone == 'b'" });
    await expect(client(h).add(addRequest("p"))).rejects.toMatchObject({ code: "no-pools" });
    await nothingLeft(h);
  });

  it("plumbing failure: the address is released, the veth removed", async () => {
    h = await startHarness();
    h.plumber.fail = new Error("ip link add failed");
    await expect(client(h).add(addRequest("p"))).rejects.toMatchObject({ code: "plumbing-failed" });
    expect(h.plumber.removed).toEqual([h.plumber.hostIfName({ namespace: "default", workload: "p" })]);
    await nothingLeft(h);
  });

  it("endpoint write failure: the veth removed, the address released", async () => {
    const inner = createMemoryDatastore();
    const failing = new Proxy(inner, {
      get(target, key) {
        if (key === "create") {
          return async (o: Parameters<Datastore["create"]>[0]) => {
            if (o.kind === "WorkloadEndpoint") throw unavailableError("etcd gone");
            return target.create(o);
          };
        }
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === "function" ? v.bind(target) : v;
      },
    }) as Datastore;
    h = await startHarness({ datastore: failing });
    const err = await client(h)
      .add(addRequest("p"))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "datastore-unavailable", retryable: true });
    await nothingLeft(h);
  });

  it("not programmed in time: deadline-exceeded, the endpoint deleted, the veth removed, the address released", async () => {
    h = await startHarness({ api: { deadlinesMs: { add: 300 } } });
    h.pipeline.wait = (_k, _r, signal) =>
      new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
    const err = await client(h)
      .add(addRequest("p"))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "deadline-exceeded", retryable: true });
    await nothingLeft(h);
  });

  it("the pipeline stopping before it programmed the endpoint: retryable not-ready, everything rolled back", async () => {
    h = await startHarness();
    h.pipeline.wait = async () => {
      throw new Error("pipeline closed");
    };
    const err = await client(h)
      .add(addRequest("p"))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "not-ready", retryable: true, message: "pipeline closed" });
    await nothingLeft(h);
  });

  it("the client's shorter deadline bounds the agent's work", async () => {
    h = await startHarness();
    h.pipeline.wait = (_k, _r, signal) =>
      new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal.reason)));
    const err = await createWorkloadClient(h.socketPath, { timeoutMs: 300 })
      .add(addRequest("p"))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "deadline-exceeded" });
    // The agent rolled back on its own deadline (the same 300 ms), not whenever it noticed.
    for (let i = 0; i < 100 && (await weps(h.datastore)).length > 0; i++)
      await new Promise((r) => setTimeout(r, 20));
    h.pipeline.wait = async () => {};
    await nothingLeft(h);
  });

  it("a client that goes away mid-add gets its add rolled back at once, not at the deadline", async () => {
    h = await startHarness();
    const entered = gate();
    h.pipeline.wait = (_k, _r, signal) =>
      new Promise((_resolve, reject) => {
        entered.open();
        signal?.addEventListener("abort", () => reject(signal.reason));
      });
    const ac = new AbortController();
    const pending = createWorkloadClient(h.socketPath, { timeoutMs: 60_000 })
      .add(addRequest("p"), { signal: ac.signal })
      .catch((e: unknown) => e);
    await entered.opened;
    ac.abort();
    expect(await pending).toMatchObject({ code: "deadline-exceeded" });
    for (let i = 0; i < 150 && (await h.inUse()) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    await nothingLeft(h);
  });

  it("a failed repeat of a successful add leaves the working attachment alone", async () => {
    h = await startHarness();
    const c = client(h);
    await c.add(addRequest("p"));
    h.plumber.fail = new Error("transient");
    await expect(c.add(addRequest("p"))).rejects.toMatchObject({ code: "plumbing-failed" });
    expect(await h.inUse()).toBe(1);
    expect(await weps(h.datastore)).toHaveLength(1);
  });
});

describe("workload API: del and check", () => {
  it("del removes the endpoint, the veth and the addresses; a second del and an unknown del succeed", async () => {
    h = await startHarness();
    const c = client(h);
    const a = await c.add(addRequest("p"));
    const d = await c.del({ containerId: "c-p", ifName: "eth0", namespace: "default", pod: "p" });
    expect(d).toEqual({
      released: [a.ips[0]!.address.split("/")[0]],
      endpointDeleted: true,
      interfaceRemoved: true,
    });
    expect(await weps(h.datastore)).toEqual([]);
    expect(h.plumber.links.size).toBe(0);
    expect(await h.inUse()).toBe(0);
    expect(await c.del({ containerId: "c-p", ifName: "eth0", namespace: "default", pod: "p" })).toMatchObject(
      {
        released: [],
        endpointDeleted: false,
      },
    );
    await c.del({ containerId: "never", ifName: "eth0" });
  });

  it("del without the pod name finds the endpoint by its attachment", async () => {
    h = await startHarness();
    const c = client(h);
    const a = await c.add(addRequest("p", { namespace: "team" }));
    const d = await c.del({ containerId: "c-p", ifName: "eth0" });
    expect(d).toMatchObject({ endpointDeleted: true, interfaceRemoved: true });
    expect(h.plumber.links.has(a.hostInterface)).toBe(false);
    expect(await h.inUse()).toBe(0);
  });

  it("del with the endpoint store down still releases the addresses and answers retryable", async () => {
    const inner = createMemoryDatastore();
    let down = false;
    const flaky = new Proxy(inner, {
      get(target, key) {
        const v = Reflect.get(target, key, target) as unknown;
        if (typeof v !== "function") return v;
        return (...args: unknown[]) => {
          const kind = (args[0] as { kind?: string } | string | undefined) ?? "";
          const k = typeof kind === "string" ? kind : kind.kind;
          if (down && k === "WorkloadEndpoint") throw unavailableError("etcd gone");
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    }) as Datastore;
    h = await startHarness({ datastore: flaky });
    const c = client(h);
    const a = await c.add(addRequest("p"));
    down = true;
    const err = await c
      .del({ containerId: "c-p", ifName: "eth0", namespace: "default", pod: "p" })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "datastore-unavailable", retryable: true });
    expect(await h.inUse()).toBe(0);
    // Whose veth it is cannot be told without the endpoint: it stays until the retried del.
    expect(h.plumber.links.has(a.hostInterface)).toBe(true);
    down = false;
    expect(await c.del({ containerId: "c-p", ifName: "eth0", namespace: "default", pod: "p" })).toMatchObject(
      {
        endpointDeleted: true,
        interfaceRemoved: true,
      },
    );
  });

  it("del works while the dataplane is not in sync", async () => {
    h = await startHarness();
    const c = client(h);
    await c.add(addRequest("p"));
    h.pipeline.inSync = false;
    await c.del({ containerId: "c-p", ifName: "eth0", namespace: "default", pod: "p" });
    expect(await h.inUse()).toBe(0);
  });

  it("check passes after add and names what is missing afterwards", async () => {
    h = await startHarness();
    const c = client(h);
    const a = await c.add(addRequest("p"));
    expect(await c.check(addRequest("p"))).toEqual({
      ok: true,
      ips: [a.ips[0]!.address.split("/")[0]],
      hostInterface: a.hostInterface,
    });
    h.plumber.links.delete(a.hostInterface);
    const err = await c.check(addRequest("p")).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "check-failed" });
    expect((err as WorkloadApiError).details.problems).toEqual([`host interface ${a.hostInterface} missing`]);
    await c.del({ containerId: "c-p", ifName: "eth0", namespace: "default", pod: "p" });
    const err2 = await c.check(addRequest("p")).catch((e: unknown) => e);
    expect((err2 as WorkloadApiError).details.problems).toEqual(
      expect.arrayContaining(["no addresses allocated to this attachment", expect.stringMatching(/missing/)]),
    );
  });
});

describe("workload API: concurrency", () => {
  it("serialises requests of one container and runs different pods in parallel", async () => {
    h = await startHarness();
    const c = client(h);
    const g = gate();
    let entered = 0;
    h.plumber.gate = async () => {
      entered++;
      await g.opened;
    };
    const same = [c.add(addRequest("s")), c.add(addRequest("s")), c.add(addRequest("s"))];
    const others = Array.from({ length: 4 }, (_, i) => c.add(addRequest(`o${i}`)));
    for (let i = 0; i < 200 && entered < 5; i++) await new Promise((r) => setTimeout(r, 10));
    // One of "s" plus the four others are inside the plumber at once; the other two "s" wait.
    expect(entered).toBe(5);
    g.open();
    const results = await Promise.all([...same, ...others]);
    expect(new Set(results.slice(0, 3).map((r) => r.ips[0]!.address)).size).toBe(1);
    expect(h.plumber.maxActive).toBe(5);
    expect(await h.inUse()).toBe(5);
  });
});

describe("workload API: this node's IPAM one call at a time", () => {
  it("concurrent adds and dels of different pods never run IPAM calls at once (no CAS conflict storm)", async () => {
    const datastore = createMemoryDatastore();
    await addPool(datastore, "pool4", { cidr: "10.70.0.0/16", blockSize: 26 });
    const real = createIpam({ datastore });
    let now = 0;
    let most = 0;
    const counted =
      <A extends unknown[], R>(fn: (...a: A) => Promise<R>) =>
      async (...a: A): Promise<R> => {
        most = Math.max(most, ++now);
        try {
          // A datastore round trip's worth of time, so calls that may overlap do.
          await new Promise((r) => setTimeout(r, 20));
          return await fn(...a);
        } finally {
          now--;
        }
      };
    const ipam = Object.assign(Object.create(real) as typeof real, {
      autoAssign: counted(real.autoAssign.bind(real)),
      releaseByHandle: counted(real.releaseByHandle.bind(real)),
    });
    h = await startHarness({ datastore, pools: "none", api: { ipam } });
    const c = client(h);
    const pods = Array.from({ length: 8 }, (_, i) => `p${i}`);
    const replies = await Promise.all(pods.map((p) => c.add(addRequest(p))));
    expect(new Set(replies.map((r) => r.ips[0]!.address)).size).toBe(8);
    await Promise.all(
      pods.map((p) => c.del({ containerId: `c-${p}`, ifName: "eth0", namespace: "default", pod: p })),
    );
    expect(most).toBe(1);
    await real.close();
  });
});

describe("workload API: only IPAM's claims take the node's turn", () => {
  it("an add's reads (its handle, the pools) run while another pod's claim is in progress", async () => {
    const datastore = createMemoryDatastore();
    await addPool(datastore, "pool4", { cidr: "10.70.0.0/16", blockSize: 26 });
    const real = createIpam({ datastore });
    let reads = 0;
    let unblock!: () => void;
    const blocked = new Promise<void>((r) => {
      unblock = r;
    });
    let claimStarted!: () => void;
    const claiming = new Promise<void>((r) => {
      claimStarted = r;
    });
    let first = true;
    const ipam = Object.assign(Object.create(real) as typeof real, {
      ipsByHandle: async (...a: Parameters<typeof real.ipsByHandle>) => {
        reads++;
        return real.ipsByHandle(...a);
      },
      autoAssign: async (...a: Parameters<typeof real.autoAssign>) => {
        if (first) {
          first = false;
          claimStarted();
          await blocked;
        }
        return real.autoAssign(...a);
      },
    });
    h = await startHarness({ datastore, pools: "none", api: { ipam } });
    const c = client(h);
    const a = c.add(addRequest("a"));
    await claiming;
    const b = c.add(addRequest("b"));
    // b's read of its own handle does not wait for a's claim to finish.
    try {
      for (let i = 0; i < 100 && reads < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(reads).toBe(2);
    } finally {
      unblock();
    }
    const replies = await Promise.all([a, b]);
    expect(new Set(replies.map((r) => r.ips[0]!.address)).size).toBe(2);
    await real.close();
  });
});

describe("workload API: waiting for a busy attachment", () => {
  it("a request queued behind a slow one gives up at its own deadline, and the queue moves on", async () => {
    h = await startHarness();
    const g = gate();
    const inside = gate();
    h.plumber.gate = async () => {
      inside.open();
      await g.opened;
    };
    const slow = client(h).add(addRequest("p"));
    await inside.opened;
    const quick = createWorkloadClient(h.socketPath, { timeoutMs: 200 });
    const err = await quick
      .del({ containerId: "c-p", ifName: "eth0", namespace: "default", pod: "p" })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "deadline-exceeded", retryable: true });
    // The agent gave the del up too (while the add still holds the attachment), so it did nothing.
    const gaveUp = async () => (await h!.metrics.metrics()).includes('verb="del",result="deadline-exceeded"');
    for (let i = 0; i < 200 && !(await gaveUp()); i++) await new Promise((s) => setTimeout(s, 10));
    expect(await gaveUp()).toBe(true);
    expect(h.plumber.maxActive).toBe(1);
    g.open();
    const r = await slow;
    expect(await h.inUse()).toBe(1);
    // The lock passed on: the next request for the attachment runs.
    expect((await client(h).check(addRequest("p"))).ips).toEqual([r.ips[0]!.address.split("/")[0]]);
  });
});

describe("workload API: gc", () => {
  it("releases this node's attachments the runtime no longer has, and only those", async () => {
    h = await startHarness();
    const c = client(h);
    const keep = await c.add(addRequest("keep"));
    const drop = await c.add(addRequest("drop"));
    const drop2 = await c.add(addRequest("drop2", { ifName: "net1" }));
    // Another node's endpoint and a kube-adapter endpoint (no annotation) are not ours.
    const foreign = (name: string, node: string, annotated: boolean): WorkloadEndpoint => ({
      apiVersion: "margay.io/v1",
      kind: "WorkloadEndpoint",
      metadata: {
        name,
        namespace: "default",
        ...(annotated ? { annotations: { [IFNAME_ANNOTATION]: "eth0" } } : {}),
      },
      spec: { node, containerID: "zzz", interfaceName: "mgy000000000000", pod: name },
    });
    await h.datastore.create(foreign("other-node", "node-b", true));
    await h.datastore.create(foreign("kube", NODE, false));
    // margay-ipam's handle on this node (network "margay") is not ours either.
    await h.ipam.autoAssign({ handleId: "margay.cid9", node: NODE, num4: 1 });
    const r = await c.gc({ validAttachments: [{ containerId: "c-keep", ifName: "eth0" }] });
    expect(r.released.map((x) => x.handleId).sort()).toEqual(
      [workloadHandleId("c-drop", "eth0"), workloadHandleId("c-drop2", "net1")].sort(),
    );
    expect([...r.endpointsDeleted].sort()).toEqual([
      "default/node--a-k8s-drop-eth0",
      "default/node--a-k8s-drop2-net1",
    ]);
    expect(h.plumber.links.has(keep.hostInterface)).toBe(true);
    expect(h.plumber.links.has(drop.hostInterface)).toBe(false);
    expect(h.plumber.links.has(drop2.hostInterface)).toBe(false);
    expect((await weps(h.datastore)).map((w) => w.metadata.name).sort()).toEqual([
      "kube",
      "node--a-k8s-keep-eth0",
      "other-node",
    ]);
    expect(await h.ipam.ipsByHandle("margay.cid9")).toHaveLength(1);
    expect(await h.inUse()).toBe(2);
  });

  it("leaves endpoints and allocations inside the grace period alone", async () => {
    h = await startHarness({ api: { gcGracePeriodMs: 60_000 } });
    const c = client(h);
    await c.add(addRequest("young"));
    const r = await c.gc({ validAttachments: [] });
    expect(r.released).toEqual([]);
    expect(r.endpointsDeleted).toEqual([]);
    expect(await h.inUse()).toBe(1);
  });

  it("takes its grace period from the agent's configuration (MARGAY_WORKLOAD_GC_GRACE_PERIOD) unless given one", async () => {
    h = await startHarness({ api: { gcGracePeriodMs: undefined }, config: { workloadGcGracePeriodMs: 0 } });
    const c = client(h);
    await c.add(addRequest("young"));
    const r = await c.gc({ validAttachments: [] });
    expect(r.released.map((x) => x.handleId)).toEqual(["margay:c-young:eth0"]);
    expect(r.endpointsDeleted).toEqual(["default/node--a-k8s-young-eth0"]);
    expect(await h.inUse()).toBe(0);
    await h.close();
    h = undefined;
    // Neither set: the built-in 60 s keeps a young attachment.
    h = await startHarness({ api: { gcGracePeriodMs: undefined } });
    await client(h).add(addRequest("young"));
    expect((await client(h).gc({ validAttachments: [] })).released).toEqual([]);
    expect(await h.inUse()).toBe(1);
  });
});

describe("workload API: addresses of the plugin's host-local delegate (externalIps)", () => {
  it("plumbs and writes the given addresses without the agent's IPAM; del and check leave IPAM alone", async () => {
    h = await startHarness();
    const c = client(h);
    const reply = await c.add(addRequest("hl", { externalIps: ["10.244.1.5", "fd10::5"] }));
    expect(reply.ips.map((i) => i.address)).toEqual(["10.244.1.5/32", "fd10::5/128"]);
    expect(reply.ips.map((i) => i.gateway)).toEqual([WORKLOAD_GATEWAY_V4, WORKLOAD_GATEWAY_V6]);
    expect(await h.inUse()).toBe(0);
    const [wep] = await weps(h.datastore);
    expect(wep!.spec.ipNetworks).toEqual(["10.244.1.5/32", "fd10::5/128"]);
    expect(h.plumber.links.has(reply.hostInterface)).toBe(true);
    await expect(
      c.check(addRequest("hl", { externalIps: ["10.244.1.5", "fd10::5"] })),
    ).resolves.toMatchObject({
      ok: true,
      ips: ["10.244.1.5", "fd10::5"],
    });
    // Without them, check looks in the agent's IPAM, which holds nothing for this attachment.
    await expect(c.check(addRequest("hl"))).rejects.toMatchObject({ code: "check-failed" });
    expect(await c.del({ containerId: "c-hl", ifName: "eth0", namespace: "default", pod: "hl" })).toEqual({
      released: [],
      endpointDeleted: true,
      interfaceRemoved: true,
    });
    expect(await weps(h.datastore)).toEqual([]);
  });

  it("a failed add rolls back the veth and the endpoint and releases nothing of the agent's IPAM", async () => {
    h = await startHarness();
    await client(h).add(addRequest("own"));
    h.plumber.fail = new Error("ip link add failed");
    await expect(client(h).add(addRequest("hl", { externalIps: ["10.244.1.5"] }))).rejects.toMatchObject({
      code: "plumbing-failed",
    });
    expect(await h.inUse()).toBe(1);
  });

  it("refuses externalIps with ips or pools, empty, or two of a family", async () => {
    h = await startHarness();
    const c = client(h);
    for (const [extra, field] of [
      [{ externalIps: ["10.244.1.5"], ips: ["10.70.0.9"] }, "externalIps"],
      [{ externalIps: ["10.244.1.5"], pools: ["pool4"] }, "externalIps"],
      [{ externalIps: [] }, "externalIps"],
      [{ externalIps: ["10.244.1.5", "10.244.1.6"] }, "externalIps[1]"],
      [{ externalIps: ["10.244.1.5/24"] }, "externalIps[0]"],
    ] as const) {
      await expect(c.add(addRequest("bad", extra))).rejects.toMatchObject({
        code: "invalid-field",
        details: { field },
      });
    }
    expect(await weps(h.datastore)).toEqual([]);
  });

  it("status names this node's pod CIDRs (kube-adapter's annotation) and the gc grace period", async () => {
    expect(NODE_POD_CIDRS_ANNOTATION).toBe(POD_CIDRS_ANNOTATION);
    h = await startHarness({ api: { gcGracePeriodMs: 5_000 } });
    expect(await client(h).status()).toMatchObject({ podCidrs: [], gcGracePeriodMs: 5_000 });
    await h.datastore.create({
      apiVersion: "projectcalico.org/v3",
      kind: "Node",
      metadata: {
        name: NODE,
        annotations: { [NODE_POD_CIDRS_ANNOTATION]: "10.244.1.0/24, fd10:0:0:1::/64,junk" },
      },
      spec: {},
    } as never);
    expect((await client(h).status()).podCidrs).toEqual(["10.244.1.0/24", "fd10:0:0:1::/64"]);
  });
});

describe("workload API: socket", () => {
  it("creates the directory 0700 and the socket 0600, and removes the socket on close", async () => {
    h = await startHarness();
    expect((await stat(join(h.dir, "run"))).mode & 0o777).toBe(0o700);
    const st = await lstat(h.socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    await h.api.close();
    await expect(lstat(h.socketPath)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("replaces a stale socket, refuses a live one and a path that is not a socket", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mgy-wl-sock-"));
    try {
      // Stale: the socket file of an agent that was killed.
      const stale = join(dir, "stale.sock");
      deadListener(stale);
      expect((await lstat(stale)).isSocket()).toBe(true);
      h = await startHarness({ socketPath: stale });
      expect((await client(h).status()).ready).toBe(true);
      // Live: a second agent on the same path is refused.
      const ds = createMemoryDatastore();
      const ctx = fakeContext(ds, stale);
      const opts = {
        pipeline: fakePipeline(),
        ipam: h.ipam,
        plumber: fakePlumber(),
        addresses: { ipv4: undefined, ipv6: undefined, interface: undefined, interfaceMtu: undefined },
        mtu: 1500,
      };
      await expect(startWorkloadApi(ctx, opts)).rejects.toMatchObject({
        code: "socket-unavailable",
        details: { reason: "in-use" },
      });
      expect((await client(h).status()).ready).toBe(true);
      // Not a socket.
      const file = join(dir, "file");
      await writeFile(file, "x");
      await expect(startWorkloadApi(fakeContext(ds, file), opts)).rejects.toMatchObject({
        code: "socket-unavailable",
        details: { reason: "not-a-socket" },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("workload API: CNI DEL spool", () => {
  it("finishes the dels spooled while the agent was down, sets aside invalid ones, retries failures", async () => {
    h = await startHarness();
    const c = client(h);
    await c.add(addRequest("a"));
    await c.add(addRequest("b"));
    await h.api.close();
    // The agent is down: the plugin spools its DELs.
    const stateDir = join(h.dir, "state");
    const fa = await spoolDel(stateDir, {
      containerId: "c-a",
      ifName: "eth0",
      namespace: "default",
      pod: "a",
    });
    const fb = await spoolDel(stateDir, {
      containerId: "c-b",
      ifName: "eth0",
      namespace: "default",
      pod: "b",
    });
    await writeFile(join(delSpoolDir(stateDir), "junk:eth0.json"), "{not json");
    expect((await stat(fa)).mode & 0o777).toBe(0o600);
    expect((await stat(delSpoolDir(stateDir))).mode & 0o777).toBe(0o700);
    // b's endpoint cannot be deleted at first (the datastore refuses WorkloadEndpoint deletes).
    let refuse = true;
    const ds = new Proxy(h.datastore, {
      get(target, key) {
        const v = Reflect.get(target, key, target) as unknown;
        if (key === "delete") {
          return async (k: { kind: string; name: string }, o?: object) => {
            if (refuse && k.name.includes("-b-")) throw unavailableError("etcd gone");
            return target.delete(k, o);
          };
        }
        return typeof v === "function" ? v.bind(target) : v;
      },
    }) as Datastore;
    const api = await startWorkloadApi(fakeContext(ds, join(h.dir, "run", "agent2.sock")), {
      pipeline: h.pipeline,
      ipam: h.ipam,
      plumber: h.plumber,
      addresses: { ipv4: undefined, ipv6: undefined, interface: undefined, interfaceMtu: undefined },
      mtu: 1450,
      stateDir,
      spoolRetryMs: 50,
    });
    try {
      const until = async (cond: () => Promise<boolean>) => {
        for (let i = 0; i < 200 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 20));
        expect(await cond()).toBe(true);
      };
      const exists = (f: string) =>
        stat(f).then(
          () => true,
          () => false,
        );
      await until(async () => !(await exists(fa)));
      expect((await weps(h.datastore)).map((w) => w.spec.pod)).toEqual(["b"]);
      expect(await exists(join(delSpoolDir(stateDir), "junk:eth0.json.rejected"))).toBe(true);
      expect(await exists(fb)).toBe(true);
      refuse = false;
      await until(async () => !(await exists(fb)));
      expect(await weps(h.datastore)).toEqual([]);
      expect(await h.inUse()).toBe(0);
      expect(h.plumber.links.size).toBe(0);
    } finally {
      await api.close();
    }
  });
});

describe("workload client", () => {
  it("a missing socket is the retryable agent-unavailable", async () => {
    const err = await createWorkloadClient("/nonexistent/margay/agent.sock")
      .status()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "agent-unavailable", retryable: true, details: { errno: "ENOENT" } });
  });

  it("a refused connection is agent-unavailable", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mgy-wl-cl-"));
    try {
      const path = join(dir, "s.sock");
      deadListener(path);
      const err = await createWorkloadClient(path)
        .add(addRequest("p"))
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "agent-unavailable", details: { errno: "ECONNREFUSED" } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("an agent stopping mid-request answers shutting-down", async () => {
    h = await startHarness();
    const entered = gate();
    h.pipeline.wait = (_k, _r, signal) =>
      new Promise((_resolve, reject) => {
        entered.open();
        signal?.addEventListener("abort", () => reject(signal.reason));
      });
    const pending = client(h)
      .add(addRequest("p"))
      .catch((e: unknown) => e);
    await entered.opened;
    h.stop.abort();
    expect(await pending).toMatchObject({ code: "shutting-down", retryable: true });
    expect(await h.inUse()).toBe(0);
  });
});
