import type { IPPool } from "@margay/api";
import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { afterEach, describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import type { AgentConfig } from "./config/types.js";
import { eventually, pool, type TestContext, testContext } from "./dataplane/pipeline.test-util.js";
import { startWorkloadMtuFollower, WORKLOAD_MTU_METRIC, workloadMtuFor } from "./workload-mtu.js";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const ADDRESSES = { interfaceMtu: 1500 };

async function setModes(
  ds: Datastore,
  name: string,
  modes: { vxlanMode?: "Always" | "Never"; ipipMode?: "Always" | "Never"; disabled?: boolean },
): Promise<void> {
  const p = await ds.get<IPPool>({ kind: "IPPool", name });
  await ds.update({ ...p, spec: { ...p.spec, ...modes } });
}

async function follow(ds: Datastore, config: Partial<AgentConfig> = {}) {
  const ctx: TestContext = testContext({ datastore: ds, config });
  const pools = (await ds.list<IPPool>("IPPool")).items;
  const follower = startWorkloadMtuFollower(ctx, { addresses: ADDRESSES, pools });
  cleanup.push(async () => {
    await follower.close();
    ctx.abort.abort();
  });
  const changes: [number, number][] = [];
  follower.onChange((mtu, previous) => changes.push([mtu, previous]));
  return { ctx, follower, changes };
}

async function gauge(ctx: TestContext): Promise<number | undefined> {
  const m = await ctx.metrics.getSingleMetric(WORKLOAD_MTU_METRIC)?.get();
  return m?.values[0]?.value;
}

describe("workloadMtuFor", () => {
  it("the enabled pools decide; the configuration only while there is none; MARGAY_MTU wins", () => {
    const cfg = (over: Partial<AgentConfig> = {}) => testContext({ config: over }).config;
    const ipip = pool("a", "10.1.0.0/16", { ipipMode: "Always" }) as unknown as IPPool;
    const vxlan = pool("b", "10.2.0.0/16", { vxlanMode: "Always" }) as unknown as IPPool;
    const flat = pool("c", "10.3.0.0/16", { vxlanMode: "Never", ipipMode: "Never" }) as unknown as IPPool;
    expect(workloadMtuFor(cfg(), ADDRESSES, [flat])).toBe(1500);
    expect(workloadMtuFor(cfg(), ADDRESSES, [flat, ipip])).toBe(1480);
    expect(workloadMtuFor(cfg(), ADDRESSES, [ipip, vxlan])).toBe(1450);
    const disabled = { ...vxlan, spec: { ...vxlan.spec, disabled: true } };
    expect(workloadMtuFor(cfg(), ADDRESSES, [flat, disabled])).toBe(1500);
    // No pool yet: the backend's and the default pools' encapsulation.
    expect(workloadMtuFor(cfg({ networkingBackend: "vxlan" }), ADDRESSES, [])).toBe(1450);
    // The vxlan backend gives the node a VTEP whatever the pools say.
    expect(workloadMtuFor(cfg({ networkingBackend: "vxlan" }), ADDRESSES, [flat])).toBe(1450);
    // Pools exist: they decide, not the default pools' configured modes.
    const defaultPools: AgentConfig["defaultPools"] = {
      ipv4: {
        name: "default-ipv4-ippool",
        cidr: "10.9.0.0/16",
        blockSize: 26,
        ipipMode: "Always",
        vxlanMode: "Never",
        natOutgoing: true,
        nodeSelector: "all()",
      },
      ipv6: undefined,
    };
    expect(workloadMtuFor(cfg({ defaultPools }), ADDRESSES, [flat])).toBe(1500);
    expect(workloadMtuFor(cfg({ defaultPools }), ADDRESSES, [])).toBe(1480);
    expect(workloadMtuFor(cfg({ mtu: 1300 }), ADDRESSES, [vxlan])).toBe(1300);
  });
});

describe("the workload MTU follows the pools at runtime", () => {
  it("a pool switched IPIP → VXLAN → none changes the MTU, the gauge and the listeners; logged at info", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanup.push(() => ds.close());
    await ds.create(pool("p1", "10.65.0.0/16", { ipipMode: "Always", vxlanMode: "Never" }));
    const { ctx, follower, changes } = await follow(ds);
    expect(follower.current).toBe(1480);
    expect(await gauge(ctx)).toBe(1480);

    await setModes(ds, "p1", { ipipMode: "Never", vxlanMode: "Always" });
    await eventually(() => follower.current === 1450);
    expect(await gauge(ctx)).toBe(1450);
    expect(ctx.logger.find({ message: "workload MTU changed; new workloads get it" })).toEqual([
      expect.objectContaining({
        level: "info",
        attributes: expect.objectContaining({ mtu: 1450, previous: 1480, encapsulations: ["vxlan"] }),
      }),
    ]);

    await setModes(ds, "p1", { vxlanMode: "Never" });
    await eventually(() => follower.current === 1500);
    // A second pool with VXLAN lowers it again; deleting that pool raises it.
    await ds.create(pool("p2", "10.66.0.0/16", { vxlanMode: "Always" }));
    await eventually(() => follower.current === 1450);
    await ds.delete({ kind: "IPPool", name: "p2" });
    await eventually(() => follower.current === 1500);
    expect(changes).toEqual([
      [1450, 1480],
      [1500, 1450],
      [1450, 1500],
      [1500, 1450],
    ]);
    expect(await gauge(ctx)).toBe(1500);
  });

  it("an explicit MTU (MARGAY_MTU) wins and never changes", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanup.push(() => ds.close());
    await ds.create(pool("p1", "10.65.0.0/16", { vxlanMode: "Never" }));
    const { follower, changes } = await follow(ds, { mtu: 1400 });
    // A follower without one on the same pools is the witness that the change was delivered.
    const witness = await follow(ds);
    await setModes(ds, "p1", { vxlanMode: "Always" });
    await eventually(() => witness.follower.current === 1450);
    expect(follower.current).toBe(1400);
    expect(changes).toEqual([]);
  });
});
