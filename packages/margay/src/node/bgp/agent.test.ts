/**
 * startBgp over a memory datastore and a fake pipeline, against a plain `@margay/bgp` speaker as the
 * external (top-of-rack) peer, on loopback addresses 127.0.0.6x.
 */
import { connect } from "node:net";
import { type BGPConfiguration, type BGPPeerSpec, createRecordingLogger } from "@margay/api";
import { createSpeaker, type Speaker } from "@margay/bgp";
import { createMemoryDatastore, type MemoryDatastore } from "@margay/datastore";
import { afterEach, describe, expect, it } from "vitest";
import type { AgentConfig } from "../config/types.js";
import { type BgpAgent, describePeerError, startBgp } from "./agent.js";
import { eventually, FakePipeline, freePort, testConfig, testContext } from "./fixtures.test-util.js";

const SELF = "127.0.0.61";
const TOR = "127.0.0.62";
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

async function setup(
  o: { config?: Partial<AgentConfig>; logger?: ReturnType<typeof createRecordingLogger> } = {},
) {
  const ds: MemoryDatastore = createMemoryDatastore();
  cleanup.push(() => ds.close());
  const listenPort = await freePort(SELF);
  const tor: Speaker = await createSpeaker({
    asn: 65100,
    routerId: "10.255.6.2",
    listen: [{ host: TOR, port: 0 }],
    idleHoldTime: 0,
  });
  cleanup.push(() => tor.close());
  tor.addPeer({ address: SELF, asn: 64512, passive: true });
  const torPort = tor.listening[0]!.port;
  await ds.create({
    apiVersion: "margay.io/v1",
    kind: "Node",
    metadata: { name: "node-a" },
    spec: { bgp: { ipv4Address: `${SELF}/8` } },
  });
  await ds.create({
    apiVersion: "margay.io/v1",
    kind: "BGPConfiguration",
    metadata: { name: "default" },
    spec: { listenPort },
  });
  const t = testContext(ds, testConfig("node-a", o.config), o.logger);
  const pipeline = new FakePipeline();
  const agent: BgpAgent = startBgp(t.ctx, {
    pipeline,
    addresses: { ipv4: `${SELF}/8`, ipv6: undefined, interface: "lo", interfaceMtu: 65536 },
  });
  cleanup.push(() => agent.close());
  const addPeer = (name: string, spec: BGPPeerSpec) =>
    ds.create({ apiVersion: "margay.io/v1", kind: "BGPPeer", metadata: { name }, spec });
  return { ds, tor, torPort, agent, pipeline, addPeer, ...t };
}

describe("startBgp", () => {
  it("peers only once the dataplane is in sync, exports own blocks and borrowed addresses, imports the rest", async () => {
    const s = await setup();
    await s.addPeer("tor", { peerIP: `${TOR}:${s.torPort}`, asNumber: 65100 });
    const waiting = await eventually(
      () => (s.health.get()?.reason?.includes("dataplane") ? s.health.get() : undefined),
      "waiting for the dataplane",
    );
    expect(waiting.ready).toBe(false);
    expect(s.agent.status()).toEqual([]);

    s.pipeline.apply([
      { kind: "route-update", dst: "10.65.1.0/26", type: "local-block" },
      { kind: "route-update", dst: "10.65.1.5/32", type: "local-workload", ifname: "mgy1" },
      { kind: "route-update", dst: "10.65.9.9/32", type: "local-workload", ifname: "mgy2" },
      { kind: "route-update", dst: "10.65.2.0/26", type: "remote-block", nodes: ["node-b"] },
      { kind: "in-sync" },
    ]);
    const block = await eventually(() => s.tor.route("10.65.1.0/26"), "our block at the ToR");
    expect(block.nextHops).toEqual([SELF]);
    expect(block.attributes.asPath).toEqual([{ type: 2, asns: [64512] }]);
    await eventually(() => s.tor.route("10.65.9.9/32"), "the borrowed address at the ToR");
    expect(s.tor.route("10.65.1.5/32")).toBeUndefined();
    expect(s.tor.route("10.65.2.0/26")).toBeUndefined();

    // Imports: the ToR's route goes to the pipeline; its copy of our own block does not.
    s.tor.originate("192.0.2.0/24");
    s.tor.originate("10.65.1.0/26");
    const learned = await eventually(() => s.pipeline.learnedRoutes.get("192.0.2.0/24"), "learned route");
    expect([...learned]).toEqual([[`${TOR}:${s.torPort}`, [TOR]]]);
    await eventually(() => s.agent.status()[0]?.routesImported === 2, "both ToR routes in our RIB");
    expect(s.pipeline.learnedRoutes.has("10.65.1.0/26")).toBe(false);

    const [st] = s.agent.status();
    expect(st).toMatchObject({
      id: `${TOR}:${s.torPort}`,
      address: TOR,
      port: s.torPort,
      asNumber: 65100,
      type: "global",
      source: "BGPPeer tor",
      state: "established",
      routesExported: 2,
      lastError: undefined,
    });
    expect(Number.isNaN(Date.parse(st!.since))).toBe(false);
    expect(s.health.get()).toEqual({ live: true, ready: true });
    const text = await s.metrics.metrics();
    expect(text).toContain('margay_bgp_sessions{state="established"} 1');
    expect(text).toContain("margay_bgp_routes_exported 2");
    expect(text).toContain("margay_bgp_routes_imported 1");

    // A borrowed address released: withdrawn at the peer.
    s.pipeline.apply([{ kind: "route-remove", dst: "10.65.9.9/32" }]);
    await eventually(() => s.tor.route("10.65.9.9/32") === undefined, "withdrawal at the ToR");
    // The ToR withdraws: the learned route goes.
    s.tor.withdraw("192.0.2.0/24");
    await eventually(() => !s.pipeline.learnedRoutes.has("192.0.2.0/24"), "learned withdrawal");
  });

  it("close({ graceful: true }) keeps our routes at the peer (stale), and leaves nothing behind", async () => {
    const s = await setup();
    await s.addPeer("tor", { peerIP: `${TOR}:${s.torPort}`, asNumber: 65100 });
    s.pipeline.apply([{ kind: "route-update", dst: "10.65.1.0/26", type: "local-block" }]);
    await eventually(() => s.tor.route("10.65.1.0/26"), "our block at the ToR");
    await s.agent.close({ graceful: true });
    await eventually(() => s.tor.peers()[0]?.state !== "established", "session down at the ToR");
    expect(s.tor.route("10.65.1.0/26")?.stale).toBe(true);
    expect(s.pipeline.listenerCount).toBe(0);
    expect(s.health.get()).toBeUndefined();
    expect(await s.metrics.metrics()).not.toContain("margay_bgp_");
  });

  it("follows BGPPeers as they come and go; health names the peer that refuses", async () => {
    const s = await setup();
    const closed = await freePort("127.0.0.63");
    await s.addPeer("dead", { peerIP: `127.0.0.63:${closed}`, asNumber: 65200 });
    s.pipeline.apply([{ kind: "in-sync" }]);
    const h = await eventually(
      () => (s.health.get()?.reason?.includes("refused") ? s.health.get() : undefined),
      "refused peer in health",
    );
    expect(h.ready).toBe(false);
    expect(h.reason).toBe(`BGP peer 127.0.0.63: TCP ${closed} refused`);
    expect(s.agent.status()[0]!.lastError).toBe(`TCP ${closed} refused`);

    // One good peer of two: ready (readinessRequiresAllBgpPeers is false), the reason still names the bad one.
    await s.addPeer("tor", { peerIP: `${TOR}:${s.torPort}`, asNumber: 65100 });
    await eventually(() => s.health.get()?.ready, "ready with one peer up");
    expect(s.health.get()!.reason).toContain("BGP peer 127.0.0.63");

    await s.ds.delete({ kind: "BGPPeer", name: "dead" });
    await eventually(() => s.agent.status().length === 1, "peer removed");
    expect(s.health.get()).toEqual({ live: true, ready: true });
    await s.ds.delete({ kind: "BGPPeer", name: "tor" });
    await eventually(() => s.agent.status().length === 0, "no peers");
    await eventually(() => s.tor.peers()[0]?.state !== "established", "session closed at the ToR");
  });

  it("readinessRequiresAllBgpPeers: one peer down makes the node unready; per-peer metric labels are opt-in", async () => {
    const s = await setup({
      config: {
        readinessRequiresAllBgpPeers: true,
        metrics: { enabled: false, host: "127.0.0.1", port: 0, perPeerLabels: true },
      },
    });
    await s.addPeer("tor", { peerIP: `${TOR}:${s.torPort}`, asNumber: 65100 });
    await s.addPeer("dead", { peerIP: `127.0.0.63:${await freePort("127.0.0.63")}`, asNumber: 65200 });
    s.pipeline.apply([{ kind: "in-sync" }]);
    await eventually(
      () => s.agent.status().find((p) => p.address === TOR)?.state === "established",
      "ToR up",
    );
    expect(s.health.get()!.ready).toBe(false);
    const text = await s.metrics.metrics();
    expect(text).toContain(`margay_bgp_sessions{state="established",peer="${TOR}:${s.torPort}"} 1`);
  });

  it("warns once per field it does not honour, naming it", async () => {
    const logger = createRecordingLogger();
    const s = await setup({ logger });
    await s.addPeer("secret", {
      peerIP: "127.0.0.64",
      asNumber: 65300,
      password: { secretKeyRef: { name: "bgp", key: "pw" } },
    });
    s.pipeline.apply([{ kind: "in-sync" }]);
    await eventually(() => logger.find({ message: "bgp field not honoured" }).length > 0, "warning");
    // More reconciles (a new node, a config change) do not repeat it.
    await s.ds.create({
      apiVersion: "margay.io/v1",
      kind: "Node",
      metadata: { name: "node-b" },
      spec: { bgp: { ipv4Address: "127.0.0.65/8" } },
    });
    await eventually(() => s.agent.status().some((p) => p.address === "127.0.0.65"), "mesh peer node-b");
    const warnings = logger.find({ message: "bgp field not honoured" });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.attributes).toMatchObject({ resource: "BGPPeer secret", field: "spec.password" });
    expect(s.agent.status().some((p) => p.address === "127.0.0.64")).toBe(false);
    expect(s.agent.status().find((p) => p.address === "127.0.0.65")?.type).toBe("mesh");
  });
});

describe("startBgp: speaker identity", () => {
  it("re-creates the speaker on a new listen port; the peer comes back and keeps our block", async () => {
    const s = await setup();
    await s.addPeer("tor", { peerIP: `${TOR}:${s.torPort}`, asNumber: 65100 });
    s.pipeline.apply([{ kind: "route-update", dst: "10.65.1.0/26", type: "local-block" }]);
    await eventually(() => s.tor.route("10.65.1.0/26"), "our block at the ToR");
    const port = await freePort(SELF);
    await s.ds.update({
      apiVersion: "margay.io/v1",
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: { listenPort: port },
    });
    const listening = () =>
      new Promise<boolean>((resolve) => {
        const c = connect({ host: SELF, port }, () => {
          c.destroy();
          resolve(true);
        });
        c.on("error", () => resolve(false));
      });
    let up = false;
    for (let i = 0; i < 400 && !up; i++) {
      up = await listening();
      if (!up) await new Promise((r) => setTimeout(r, 25));
    }
    expect(up).toBe(true);
    await eventually(() => s.agent.status()[0]?.state === "established", "session back");
    expect(s.tor.route("10.65.1.0/26")).toBeDefined();
  });
});

describe("startBgp: advertisement attributes and stop signal", () => {
  it("attaches prefixAdvertisements communities; aborting ctx.signal stops gracefully", async () => {
    const s = await setup();
    const def = await s.ds.get<BGPConfiguration>({ kind: "BGPConfiguration", name: "default" });
    await s.ds.update({
      ...def,
      spec: {
        ...def.spec,
        communities: [{ name: "pods", value: "64512:300:100" }],
        prefixAdvertisements: [{ cidr: "10.65.0.0/16", communities: ["pods", "64512:120"] }],
      },
    });
    await s.addPeer("tor", { peerIP: `${TOR}:${s.torPort}`, asNumber: 65100 });
    s.pipeline.apply([
      { kind: "route-update", dst: "10.65.1.0/26", type: "local-block" },
      { kind: "route-update", dst: "10.99.0.0/26", type: "local-block" },
    ]);
    const r = await eventually(() => s.tor.route("10.65.1.0/26"), "our block at the ToR");
    expect(r.attributes.communities).toEqual([(64512 * 65536 + 120) >>> 0]);
    expect(r.attributes.largeCommunities).toEqual([[64512, 300, 100]]);
    const other = await eventually(() => s.tor.route("10.99.0.0/26"), "a block outside the rule");
    expect(other.attributes.communities ?? []).toEqual([]);

    s.abort.abort();
    await eventually(() => s.health.get() === undefined, "stopped");
    await eventually(() => s.tor.peers()[0]?.state !== "established", "session down at the ToR");
    expect(s.tor.route("10.65.1.0/26")?.stale).toBe(true);
  });
});

describe("startBgp: dataplane resync", () => {
  it("a resync that hands the full set withdraws what it no longer holds", async () => {
    const s = await setup();
    await s.addPeer("tor", { peerIP: `${TOR}:${s.torPort}`, asNumber: 65100 });
    s.pipeline.apply([
      { kind: "route-update", dst: "10.65.1.0/26", type: "local-block" },
      { kind: "route-update", dst: "10.65.7.0/26", type: "local-block" },
    ]);
    await eventually(() => s.tor.route("10.65.7.0/26"), "both blocks at the ToR");
    s.pipeline.resync([{ kind: "route-update", dst: "10.65.1.0/26", type: "local-block" }]);
    await eventually(() => s.tor.route("10.65.7.0/26") === undefined, "the block gone after the resync");
    expect(s.tor.route("10.65.1.0/26")).toBeDefined();
  });
});

describe("describePeerError", () => {
  it("says what an operator needs", () => {
    const at = new Date();
    expect(describePeerError({ port: 179, state: "active", lastError: null })).toBeUndefined();
    expect(
      describePeerError({
        port: 179,
        state: "idle",
        lastError: { reason: "tcp-failed", detail: "connect failed: EHOSTUNREACH", at },
      }),
    ).toBe("TCP 179 EHOSTUNREACH");
    expect(
      describePeerError({
        port: 179,
        state: "idle",
        lastError: { reason: "notification-received", code: 2, subcode: 2, sent: false, at },
      }),
    ).toBe("NOTIFICATION received: code 2 subcode 2");
    expect(
      describePeerError({ port: 179, state: "idle", lastError: { reason: "hold-timer-expired", at } }),
    ).toBe("hold-timer-expired");
  });
});
