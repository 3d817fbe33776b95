import type { IPPool, Node } from "@margay/api";
import { createMemoryDataplane } from "@margay/dataplane";
import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { createIpam, type Ipam } from "@margay/ipam";
import { afterEach, describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import type { NodeAddresses } from "./context.js";
import { type RunningDataplanePipeline, startDataplanePipeline } from "./dataplane/pipeline.js";
import { eventually, pool, type TestContext, testContext } from "./dataplane/pipeline.test-util.js";
import { registerNode, vxlanTunnelHandle, vxlanTunnelMac } from "./registration.js";
import {
  startTunnelAddressFollower,
  type TunnelAddressFollower,
  vxlanPoolSignature,
} from "./tunnel-addresses.js";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const ADDR = (i: number): NodeAddresses => ({
  ipv4: `10.77.0.${i}/24`,
  ipv6: undefined,
  interface: "eth0",
  interfaceMtu: 1500,
});

interface Agent {
  readonly ctx: TestContext;
  readonly ipam: Ipam;
  readonly follower: TunnelAddressFollower;
}

/** What the agent does for a node: register, then follow the pools. */
async function agent(ds: Datastore, name: string, i: number): Promise<Agent> {
  const ctx = testContext({ datastore: ds, config: { nodeName: name } });
  const ipam = createIpam({ datastore: ds });
  await registerNode(ctx, ADDR(i), { ipam });
  const follower = startTunnelAddressFollower(ctx, {
    addresses: ADDR(i),
    ipam,
    debounceMs: 20,
    retry: { initialMs: 10, maxMs: 50 },
  });
  cleanup.push(async () => {
    await follower.close();
    ctx.abort.abort();
    await ipam.close();
  });
  return { ctx, ipam, follower };
}

async function nodeSpec(ds: Datastore, name: string): Promise<Node["spec"]> {
  return (await ds.get<Node>({ kind: "Node", name })).spec;
}

async function setVxlan(ds: Datastore, name: string, mode: "Always" | "Never"): Promise<void> {
  const p = await ds.get<IPPool>({ kind: "IPPool", name });
  await ds.update({ ...p, spec: { ...p.spec, vxlanMode: mode } });
}

describe("VXLAN tunnel addresses follow the pools at runtime", () => {
  it("a pool switched to VXLAN gives every Node a tunnel address and MAC and the pipeline its VTEPs; switching back removes them", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanup.push(() => ds.close());
    await ds.create(pool("flat", "10.65.0.0/16", { vxlanMode: "Never" }));
    const a = await agent(ds, "node-a", 1);
    const b = await agent(ds, "node-b", 2);
    expect((await nodeSpec(ds, "node-a")).ipv4VXLANTunnelAddr).toBeUndefined();
    const podB = (await b.ipam.autoAssign({ handleId: "pod-b", node: "node-b", num4: 1 })).ipv4[0]!;

    const driver = createMemoryDataplane({ nodeName: "node-a" });
    const pipe: RunningDataplanePipeline = await startDataplanePipeline(a.ctx, {
      driver,
      addresses: ADDR(1),
      retry: { initialMs: 10, maxMs: 50 },
      syncerRetry: { initialMs: 10, maxMs: 50 },
    });
    cleanup.push(() => pipe.close());
    await eventually(() => pipe.inSync);
    expect((await driver.snapshot()).vteps).toEqual([]);

    await setVxlan(ds, "flat", "Always");
    await eventually(async () => {
      const [sa, sb] = await Promise.all([nodeSpec(ds, "node-a"), nodeSpec(ds, "node-b")]);
      return sa.ipv4VXLANTunnelAddr !== undefined && sb.ipv4VXLANTunnelAddr !== undefined;
    });
    const sb = await nodeSpec(ds, "node-b");
    expect(sb.vxlanTunnelMACAddr).toBe(vxlanTunnelMac("node-b", 4));
    expect((await nodeSpec(ds, "node-a")).vxlanTunnelMACAddr).toBe(vxlanTunnelMac("node-a", 4));
    expect(await b.ipam.ipsByHandle(vxlanTunnelHandle("node-b", 4))).toEqual([sb.ipv4VXLANTunnelAddr]);
    // The pipeline on node-a now has node-b's VTEP and routes node-b's block through it.
    await eventually(async () => (await driver.snapshot()).vteps.length === 1);
    const snap = await driver.snapshot();
    expect(snap.vteps).toEqual([
      { address: sb.ipv4VXLANTunnelAddr, mac: vxlanTunnelMac("node-b", 4), underlay: "10.77.0.2" },
    ]);
    await eventually(async () =>
      (await driver.snapshot()).routes.some(
        (r) => r.dst === podB.block && r.nextHops[0]?.via === sb.ipv4VXLANTunnelAddr,
      ),
    );
    expect(a.ctx.health.snapshot().components.registration?.reason).toBeUndefined();

    await setVxlan(ds, "flat", "Never");
    await eventually(async () => {
      const [sa, sb2] = await Promise.all([nodeSpec(ds, "node-a"), nodeSpec(ds, "node-b")]);
      return sa.ipv4VXLANTunnelAddr === undefined && sb2.ipv4VXLANTunnelAddr === undefined;
    });
    const after = await nodeSpec(ds, "node-b");
    expect(after.vxlanTunnelMACAddr).toBeUndefined();
    expect(after.bgp?.ipv4Address).toBe("10.77.0.2/24");
    expect(await b.ipam.ipsByHandle(vxlanTunnelHandle("node-b", 4))).toEqual([]);
    await eventually(async () => (await driver.snapshot()).vteps.length === 0);
  });

  it("a failing reconcile is reported on health `registration`, retried, and cleared when it succeeds", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanup.push(() => ds.close());
    await ds.create(pool("flat", "10.65.0.0/16", { vxlanMode: "Never" }));
    const a = await agent(ds, "node-a", 1);
    await eventually(() => a.follower.reconciles >= 1);
    // Every address of the only pool taken: no tunnel address can be allocated.
    let fail = true;
    const orig = a.ipam.autoAssign.bind(a.ipam);
    (a.ipam as { autoAssign: Ipam["autoAssign"] }).autoAssign = async (req) => {
      if (fail) throw new Error("datastore unavailable (test)");
      return orig(req);
    };
    await setVxlan(ds, "flat", "Always");
    await eventually(() => a.ctx.health.snapshot().components.registration?.reason !== undefined);
    expect(a.ctx.health.snapshot().components.registration).toMatchObject({ live: true });
    expect(a.ctx.health.snapshot().components.registration?.reason).toMatch(/VXLAN tunnel address/);
    fail = false;
    await eventually(async () => (await nodeSpec(ds, "node-a")).ipv4VXLANTunnelAddr !== undefined);
    await eventually(() => a.ctx.health.snapshot().components.registration?.reason === undefined);
  });

  it("only VXLAN-relevant pool fields change the signature", () => {
    const base = pool("p", "10.65.0.0/16", { vxlanMode: "Never" }) as unknown as IPPool;
    const nat = { ...base, spec: { ...base.spec, natOutgoing: true } };
    const vx = { ...base, spec: { ...base.spec, vxlanMode: "Always" as const } };
    expect(vxlanPoolSignature([nat])).toBe(vxlanPoolSignature([base]));
    expect(vxlanPoolSignature([vx])).not.toBe(vxlanPoolSignature([base]));
  });
});
