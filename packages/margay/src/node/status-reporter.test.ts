import { createRecordingLogger, type NodeStatus, silentLogger, validateResource } from "@margay/api";
import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { afterEach, describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import type { BgpPeerStatus } from "./bgp/agent.js";
import { createHealth } from "./health.js";
import { nodeStatusPeer, type StatusReporter, startStatusReporter } from "./status-reporter.js";

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const peer: BgpPeerStatus = {
  id: "10.0.0.2",
  address: "10.0.0.2",
  port: 179,
  asNumber: 64512,
  type: "mesh",
  source: "node-to-node mesh",
  peerNode: "node-b",
  state: "active",
  since: "2026-01-02T03:04:05.000Z",
  lastError: "TCP 179 refused",
  routesImported: 0,
  routesExported: 2,
};

function fakePipeline() {
  const listeners = new Set<(updates: readonly never[]) => void>();
  return {
    inSync: false,
    onRoutes(l: (updates: readonly never[]) => void) {
      listeners.add(l);
      return () => {
        listeners.delete(l);
      };
    },
    applied() {
      this.inSync = true;
      for (const l of listeners) l([]);
    },
    get listeners() {
      return listeners.size;
    },
  };
}

async function until(
  read: () => Promise<NodeStatus | undefined>,
  ok: (v: NodeStatus | undefined) => boolean,
): Promise<NodeStatus> {
  for (let i = 0; ; i++) {
    const v = await read();
    if (v !== undefined && ok(v)) return v;
    if (i > 1000) throw new Error("condition never met");
    await new Promise((r) => setTimeout(r, 10));
  }
}

function setup(statusIntervalMs = 60_000, ds: Datastore = createMemoryDatastore({ validate: apiValidator })) {
  cleanups.push(() => ds.close());
  const health = createHealth();
  const pipeline = fakePipeline();
  const peers = [peer];
  const logger = createRecordingLogger();
  const reporter: StatusReporter = startStatusReporter(
    { config: { nodeName: "node-a", statusIntervalMs }, datastore: ds, logger, health },
    {
      bgp: { status: () => peers },
      pipeline,
      addresses: { ipv4: "10.0.0.1/24", ipv6: undefined, interface: "eth0", interfaceMtu: 1500 },
      mtu: 1450,
      version: "0.1.0",
      startedAt: new Date("2026-01-02T03:00:00.000Z"),
      debounceMs: 5,
    },
  );
  cleanups.push(() => reporter.close());
  const read = () => ds.get<NodeStatus>({ kind: "NodeStatus", name: "node-a" }).catch(() => undefined);
  return { ds, health, pipeline, peers, reporter, read, logger };
}

describe("nodeStatusPeer", () => {
  it("uses RFC 4271 state names and Calico's peer types", () => {
    expect(nodeStatusPeer(peer)).toEqual({
      address: "10.0.0.2",
      asNumber: 64512,
      type: "NodeMesh",
      state: "Active",
      since: "2026-01-02T03:04:05.000Z",
      lastError: "TCP 179 refused",
      routesImported: 0,
      routesExported: 2,
    });
    const states = ["idle", "connect", "active", "open-sent", "open-confirm", "established"] as const;
    expect(states.map((state) => nodeStatusPeer({ ...peer, state }).state)).toEqual([
      "Idle",
      "Connect",
      "Active",
      "OpenSent",
      "OpenConfirm",
      "Established",
    ]);
    expect(nodeStatusPeer({ ...peer, type: "global", lastError: undefined })).not.toHaveProperty("lastError");
    expect(nodeStatusPeer({ ...peer, type: "global" }).type).toBe("GlobalPeer");
    expect(nodeStatusPeer({ ...peer, type: "node" }).type).toBe("NodePeer");
  });
});

describe("startStatusReporter", () => {
  it("writes a valid NodeStatus at once with health, addresses, MTU, dataplane and BGP", async () => {
    const { health, read } = setup();
    health.report("datastore", { live: true, ready: true });
    const s = await until(read, (v) => v?.status?.agent?.components.length === 1);
    expect(validateResource(s)).toEqual(s);
    expect(s.spec).toEqual({ node: "node-a" });
    expect(s.status).toMatchObject({
      agent: {
        version: "0.1.0",
        startedAt: "2026-01-02T03:00:00.000Z",
        ready: true,
        components: [{ name: "datastore", live: true, ready: true }],
      },
      addresses: { ipv4: "10.0.0.1/24", interface: "eth0" },
      mtu: 1450,
      dataplane: { inSync: false },
      bgp: { peers: [nodeStatusPeer(peer)] },
    });
  });

  it("rewrites on a health change and reports the dataplane's first apply and errors", async () => {
    const { health, pipeline, read } = setup();
    await until(read, (v) => v !== undefined);
    health.report("bgp", { live: true, ready: false, reason: "BGP peer 10.0.0.2: TCP 179 refused" });
    const s1 = await until(read, (v) => v?.status?.agent?.ready === false);
    expect(s1.status?.agent?.components).toEqual([
      { name: "bgp", live: true, ready: false, reason: "BGP peer 10.0.0.2: TCP 179 refused" },
    ]);
    pipeline.applied();
    const s2 = await until(read, (v) => v?.status?.dataplane?.inSync === true);
    expect(s2.status?.dataplane?.lastApply).toMatch(/^\d{4}-/);
    health.report("dataplane", {
      live: true,
      ready: false,
      reason: "dataplane not in sync: nft transaction rejected",
    });
    const s3 = await until(read, (v) => v?.status?.dataplane?.inSync === false);
    expect(s3.status?.dataplane?.lastError).toBe("dataplane not in sync: nft transaction rejected");
  });

  it("rewrites every statusIntervalMs (BGP state changes are picked up)", async () => {
    const { peers, read } = setup(20);
    await until(read, (v) => v !== undefined);
    peers[0] = { ...peer, state: "established", lastError: undefined, routesImported: 3 };
    const s = await until(read, (v) => v?.status?.bgp?.peers[0]?.state === "Established");
    expect(s.status?.bgp?.peers[0]).toMatchObject({ routesImported: 3 });
  });

  it("keeps an operator's labels on the NodeStatus", async () => {
    const { ds, reporter, read } = setup();
    const first = await until(read, (v) => v !== undefined);
    await ds.update({ ...first, metadata: { ...first.metadata, labels: { team: "net" } } });
    await reporter.report();
    const s = await read();
    expect(s?.metadata.labels).toEqual({ team: "net" });
  });

  it("a datastore failure is logged once (not thrown), and writing resumes after it", async () => {
    const inner = createMemoryDatastore({ validate: apiValidator });
    let down = true;
    const ds = {
      get: (k: never) => (down ? Promise.reject(new Error("etcd unreachable")) : inner.get(k)),
      create: (o: never) => inner.create(o),
      update: (o: never) => inner.update(o),
      close: () => inner.close(),
    } as unknown as Datastore;
    const { reporter, logger } = setup(60_000, ds);
    await reporter.report();
    await reporter.report();
    expect(logger.find({ level: "warn", message: "cannot write node status" })).toHaveLength(1);
    down = false;
    await reporter.report();
    expect((await inner.get<NodeStatus>({ kind: "NodeStatus", name: "node-a" })).status?.mtu).toBe(1450);
    expect(logger.find({ level: "info", message: "node status written again" })).toHaveLength(1);
  });

  it("close stops the subscriptions and later reports write nothing", async () => {
    const { pipeline, reporter, read, ds } = setup();
    await until(read, (v) => v !== undefined);
    await reporter.close();
    expect(pipeline.listeners).toBe(0);
    await ds.delete({ kind: "NodeStatus", name: "node-a" });
    await reporter.report();
    expect(await read()).toBeUndefined();
  });

  it("shows the pipeline's last apply error until an apply succeeds", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanups.push(() => ds.close());
    let lastApplyError: string | undefined = "nft transaction rejected: table margay: No such file";
    const pipeline = { ...fakePipeline(), inSync: true, status: () => ({ lastApplyError }) };
    const r = startStatusReporter(
      {
        config: { nodeName: "node-a", statusIntervalMs: 60_000 },
        datastore: ds,
        logger: silentLogger,
        health: createHealth(),
      },
      {
        pipeline,
        addresses: { ipv4: "10.0.0.1/24", ipv6: undefined, interface: "eth0", interfaceMtu: 1500 },
        mtu: 1450,
        version: "0.1.0",
      },
    );
    cleanups.push(() => r.close());
    expect(r.build().dataplane).toEqual({
      inSync: false,
      lastError: "nft transaction rejected: table margay: No such file",
    });
    lastApplyError = undefined;
    expect(r.build().dataplane).toEqual({ inSync: true });
  });

  it("shows the pipeline's unresolved routes: the whole count and the first few, valid as NodeStatus", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanups.push(() => ds.close());
    const unresolvedRoutes = Array.from({ length: 7 }, (_, i) => ({
      dst: `10.65.${i}.0/26`,
      reason: "no-vtep",
      node: `node-${i}`,
    }));
    const pipeline = {
      ...fakePipeline(),
      inSync: true,
      status: () => ({ lastApplyError: undefined, unresolvedRoutes }),
    };
    const r = startStatusReporter(
      {
        config: { nodeName: "node-a", statusIntervalMs: 60_000 },
        datastore: ds,
        logger: silentLogger,
        health: createHealth(),
      },
      {
        pipeline,
        addresses: { ipv4: "10.0.0.1/24", ipv6: undefined, interface: "eth0", interfaceMtu: 1500 },
        mtu: 1450,
        version: "0.1.0",
      },
    );
    cleanups.push(() => r.close());
    const dp = r.build().dataplane;
    expect(dp?.unresolvedRoutes?.count).toBe(7);
    expect(dp?.unresolvedRoutes?.routes).toEqual(unresolvedRoutes.slice(0, 5));
    await r.report();
    const stored = await ds.get<NodeStatus>({ kind: "NodeStatus", name: "node-a" });
    expect(stored.status?.dataplane?.unresolvedRoutes?.count).toBe(7);
    unresolvedRoutes.length = 0;
    expect(r.build().dataplane).toEqual({ inSync: true });
  });

  it("shows foreign nftables chains that can drop before ours, valid as NodeStatus, without touching inSync", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanups.push(() => ds.close());
    const foreignRules = Array.from({ length: 6 }, (_, i) => ({
      family: "inet",
      table: `fw${i}`,
      chain: "forward",
      hook: "forward",
      priority: -10 - i,
      ourPriority: 0,
      order: "before" as const,
      why: "policy drop",
      ...(i === 0 ? { owner: "firewalld" } : {}),
    }));
    const pipeline = {
      ...fakePipeline(),
      inSync: true,
      status: () => ({ lastApplyError: undefined, foreignRules }),
    };
    const r = startStatusReporter(
      {
        config: { nodeName: "node-a", statusIntervalMs: 60_000 },
        datastore: ds,
        logger: silentLogger,
        health: createHealth(),
      },
      {
        pipeline,
        addresses: { ipv4: "10.0.0.1/24", ipv6: undefined, interface: "eth0", interfaceMtu: 1500 },
        mtu: 1450,
        version: "0.1.0",
      },
    );
    cleanups.push(() => r.close());
    const dp = r.build().dataplane;
    expect(dp?.inSync).toBe(true);
    expect(dp?.foreignRules?.count).toBe(6);
    expect(dp?.foreignRules?.chains).toEqual(
      foreignRules.slice(0, 5).map(({ ourPriority: _p, order: _o, ...rest }) => rest),
    );
    await r.report();
    const stored = await ds.get<NodeStatus>({ kind: "NodeStatus", name: "node-a" });
    expect(stored.status?.dataplane?.foreignRules?.chains[0]).toEqual({
      family: "inet",
      table: "fw0",
      chain: "forward",
      hook: "forward",
      priority: -10,
      why: "policy drop",
      owner: "firewalld",
    });
  });

  it("works without BGP (backend vxlan / none): no bgp section", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanups.push(() => ds.close());
    const r = startStatusReporter(
      {
        config: { nodeName: "node-a", statusIntervalMs: 60_000 },
        datastore: ds,
        logger: silentLogger,
        health: createHealth(),
      },
      {
        addresses: { ipv4: undefined, ipv6: "fd00::1/64", interface: undefined, interfaceMtu: undefined },
        mtu: undefined,
        version: "0.1.0",
      },
    );
    cleanups.push(() => r.close());
    await r.report();
    const s = await ds.get<NodeStatus>({ kind: "NodeStatus", name: "node-a" });
    expect(s.status?.bgp).toBeUndefined();
    expect(s.status?.addresses).toEqual({ ipv6: "fd00::1/64" });
  });
});
