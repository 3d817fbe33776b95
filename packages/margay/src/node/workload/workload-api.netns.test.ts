import { lstat, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WorkloadEndpoint } from "@margay/api";
import { createWorkloadPlumber } from "@margay/dataplane";
import { type NetnsLab, createNetnsLab } from "@margay/dataplane/testing";
import { type Datastore, createMemoryDatastore } from "@margay/datastore";
import { type Ipam, createIpam } from "@margay/ipam";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type WorkloadClient, createWorkloadClient } from "./client.js";
import { workloadHandleId } from "./endpoint.js";
import { type WorkloadApi, startWorkloadApi } from "./server.js";
import { IPV4_POOL, addPool, fakeContext, fakeHealth, fakePipeline } from "./test-support.js";

/**
 * The workload API with the real plumber: a namespace plays the node ("host"), another the pod. The
 * fake pipeline programs the pod's host route when asked to wait for its endpoint, as the real driver
 * would, so the reply comes only once the pod is reachable.
 */
let lab: NetnsLab;
let host: Awaited<ReturnType<NetnsLab["add"]>>;
let pod: Awaited<ReturnType<NetnsLab["add"]>>;
let dir: string;
let datastore: Datastore;
let ipam: Ipam;
let api: WorkloadApi;
let client: WorkloadClient;
const pipeline = fakePipeline();

const json = async <T>(ns: typeof host, ...args: string[]) =>
  JSON.parse(await lab.exec(ns, ["ip", "-json", ...args])) as T;

beforeAll(async () => {
  lab = createNetnsLab("mgywl");
  host = await lab.add("host");
  pod = await lab.add("pod");
  // A host address the pod's replies can go to (the node's underlay address in a real node).
  await lab.exec(host, ["ip", "addr", "add", "10.99.0.1/32", "dev", "lo"]);
  dir = await mkdtemp(join(tmpdir(), "mgy-wl-netns-"));
  datastore = createMemoryDatastore();
  await addPool(datastore, "pool4", { cidr: IPV4_POOL, blockSize: 28 });
  ipam = createIpam({ datastore });
  const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host, ifPrefix: "mgy" });
  pipeline.wait = async (key) => {
    const [namespace, name] = key.split("/") as [string, string];
    const wep = await datastore.get<WorkloadEndpoint>({ kind: "WorkloadEndpoint", namespace, name });
    for (const net of wep.spec.ipNetworks ?? []) {
      await lab.exec(host, ["ip", "route", "replace", net, "dev", wep.spec.interfaceName]);
    }
  };
  const socketPath = join(dir, "run", "agent.sock");
  api = await startWorkloadApi(
    fakeContext(datastore, socketPath, { health: fakeHealth(), metrics: new Registry() }),
    {
      pipeline,
      ipam,
      plumber,
      addresses: { ipv4: "10.99.0.1/32", ipv6: undefined, interface: "lo", interfaceMtu: 1500 },
      mtu: 1450,
    },
  );
  client = createWorkloadClient(socketPath, { timeoutMs: 30_000 });
});

afterAll(async () => {
  await api?.close();
  await ipam?.close();
  await datastore?.close();
  await lab?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe("workload API with the real plumber", () => {
  const req = () => ({
    containerId: "ctr1",
    ifName: "eth0",
    netns: `/run/netns/${pod.name}`,
    namespace: "default",
    pod: "web",
    mac: "02:00:0a:46:00:02",
  });

  it("listens on a 0600 socket in a 0700 directory", async () => {
    const st = await lstat(api.socketPath);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "run"))).mode & 0o777).toBe(0o700);
  });

  it("add gives a working veth, the address, the gateway routes and the WorkloadEndpoint", async () => {
    const r = await client.add(req());
    const ip = r.ips[0]!.address.split("/")[0]!;
    expect(r.mac).toBe("02:00:0a:46:00:02");
    const [hostLink] = await json<{ ifname: string; mtu: number; address: string }[]>(
      host,
      "link",
      "show",
      "dev",
      r.hostInterface,
    );
    expect(hostLink).toMatchObject({ mtu: 1450, address: "ee:ee:ee:ee:ee:ee" });
    const [inner] = await json<{ address: string; mtu: number; addr_info: { local: string }[] }[]>(
      pod,
      "addr",
      "show",
      "dev",
      "eth0",
    );
    expect(inner).toMatchObject({ address: "02:00:0a:46:00:02", mtu: 1450 });
    expect(inner!.addr_info.map((a) => a.local)).toContain(ip);
    const routes = await json<{ dst: string; gateway?: string }[]>(pod, "-4", "route", "show");
    expect(routes).toContainEqual(expect.objectContaining({ dst: "default", gateway: "169.254.1.1" }));
    // Packets flow both ways through the veth (host → pod, pod → host via 169.254.1.1).
    await lab.exec(host, ["ping", "-c", "1", "-W", "2", "-I", "10.99.0.1", ip]);
    await lab.exec(pod, ["ping", "-c", "1", "-W", "2", "10.99.0.1"]);
    const wep = await datastore.get<WorkloadEndpoint>({
      kind: "WorkloadEndpoint",
      namespace: "default",
      name: r.endpoint.name,
    });
    expect(wep.spec).toMatchObject({
      interfaceName: r.hostInterface,
      ipNetworks: [`${ip}/32`],
      node: "node-a",
    });
    expect(await client.check(req())).toMatchObject({ ok: true, hostInterface: r.hostInterface });
    // Idempotent on the real kernel too.
    const again = await client.add(req());
    expect(again.ips).toEqual(r.ips);
  });

  it("del removes the veth pair, the endpoint and the addresses; a second del is fine", async () => {
    const hostIf = (await client.check(req())).hostInterface;
    const d = await client.del({ containerId: "ctr1", ifName: "eth0", namespace: "default", pod: "web" });
    expect(d).toMatchObject({ endpointDeleted: true, interfaceRemoved: true });
    expect((await json<{ ifname: string }[]>(host, "link", "show")).map((l) => l.ifname)).not.toContain(
      hostIf,
    );
    expect((await json<{ ifname: string }[]>(pod, "link", "show")).map((l) => l.ifname)).toEqual(["lo"]);
    expect((await datastore.list("WorkloadEndpoint")).items).toEqual([]);
    expect(await ipam.ipsByHandle(workloadHandleId("ctr1", "eth0"))).toEqual([]);
    await client.del({ containerId: "ctr1", ifName: "eth0", namespace: "default", pod: "web" });
    await expect(client.check(req())).rejects.toMatchObject({ code: "check-failed" });
  });

  it("adds and dels of many pods in parallel all succeed, with distinct addresses and nothing left", async () => {
    const pods = await Promise.all(Array.from({ length: 8 }, (_, i) => lab.add(`p${i}`)));
    const reqs = pods.map((p, i) => ({
      containerId: `par${i}`,
      ifName: "eth0",
      netns: `/run/netns/${p.name}`,
      namespace: "burst",
      pod: `pod-${i}`,
    }));
    const added = await Promise.all(reqs.map((r) => client.add(r)));
    const ips = added.map((a) => a.ips[0]!.address);
    expect(new Set(ips).size).toBe(8);
    const hostLinks = (await json<{ ifname: string }[]>(host, "link", "show")).map((l) => l.ifname);
    for (const a of added) expect(hostLinks).toContain(a.hostInterface);
    for (const [i, p] of pods.entries()) {
      const [inner] = await json<{ addr_info: { local: string }[] }[]>(p, "addr", "show", "dev", "eth0");
      expect(inner!.addr_info.map((x) => `${x.local}/32`)).toContain(ips[i]);
    }
    await Promise.all(reqs.map((r) => client.del(r)));
    const after = (await json<{ ifname: string }[]>(host, "link", "show")).map((l) => l.ifname);
    expect(after.filter((n) => n.startsWith("mgy"))).toEqual([]);
    expect((await datastore.list("WorkloadEndpoint")).items).toEqual([]);
  });

  it("a failed plumbing step leaves no link and no address", async () => {
    // The container side already has an eth0 the plumber did not make: it refuses to take it over.
    await lab.exec(pod, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "stray0"]);
    try {
      await expect(client.add(req())).rejects.toMatchObject({ code: "plumbing-failed" });
      const hostLinks = (await json<{ ifname: string }[]>(host, "link", "show")).map((l) => l.ifname);
      expect(hostLinks.filter((n) => n.startsWith("mgy"))).toEqual([]);
      expect(await ipam.ipsByHandle(workloadHandleId("ctr1", "eth0"))).toEqual([]);
      expect((await datastore.list("WorkloadEndpoint")).items).toEqual([]);
    } finally {
      await lab.exec(pod, ["ip", "link", "del", "eth0"]);
    }
  });
});
