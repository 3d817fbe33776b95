import { silentLogger, validateResource } from "@margay/api";
import { createMemoryDatastore } from "@margay/datastore";
import { createIpam } from "@margay/ipam";
import { describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import { createHealth } from "./health.js";
import {
  createAgentMetrics,
  poolAddressFigures,
  registerHealthMetrics,
  startIpamMetrics,
} from "./metrics.js";

describe("createAgentMetrics", () => {
  it("is a registry of its own with the process metrics under margay_agent_", async () => {
    const a = createAgentMetrics();
    const b = createAgentMetrics();
    expect(a).not.toBe(b);
    const text = await a.metrics();
    expect(text).toContain("margay_agent_process_resident_memory_bytes");
    expect(text).toContain("margay_agent_nodejs_eventloop_lag_seconds");
  });
});

describe("registerHealthMetrics", () => {
  it("exports the version and each component's readiness and liveness at scrape time", async () => {
    const registry = createAgentMetrics();
    const health = createHealth();
    registerHealthMetrics(registry, health, "1.2.3");
    health.report("bgp", { live: true, ready: false, reason: "no peer" });
    health.report("dataplane", { live: true, ready: true });
    let text = await registry.metrics();
    expect(text).toContain('margay_agent_info{version="1.2.3"} 1');
    expect(text).toContain('margay_agent_component_ready{component="bgp"} 0');
    expect(text).toContain('margay_agent_component_ready{component="dataplane"} 1');
    expect(text).toContain('margay_agent_component_live{component="bgp"} 1');
    health.remove("bgp");
    text = await registry.metrics();
    expect(text).not.toContain('component="bgp"');
  });
});

describe("IPAM pool metrics", () => {
  it("exports capacity, in_use and borrowed per pool, computed from the datastore", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    for (const [name, cidr] of [
      ["a", "10.244.0.0/24"],
      ["b", "10.245.0.0/24"],
    ])
      await ds.create(
        validateResource({
          apiVersion: "margay.io/v1",
          kind: "IPPool",
          metadata: { name },
          spec: { cidr, blockSize: 26 },
        }),
      );
    const ipam = createIpam({ datastore: ds });
    const got = await ipam.autoAssign({ handleId: "h1", node: "node-a", num4: 3, pools: ["a"] });
    // An address of node-a's block given to a workload on node-b: borrowed.
    const block = got.ipv4[0]?.block as string;
    const base = block.split("/")[0] as string;
    const borrowedIp = base.replace(/\.\d+$/, (m) => `.${Number(m.slice(1)) + 10}`);
    await ipam.assignIP(borrowedIp, { handleId: "h2", node: "node-b", attrs: { node: "node-b" } });

    const figures = poolAddressFigures(await ipam.utilisation(), (await ds.list("IPAMBlock")).items as never);
    expect(figures).toEqual([
      { pool: "a", capacity: 256, inUse: 4, borrowed: 1 },
      { pool: "b", capacity: 256, inUse: 0, borrowed: 0 },
    ]);

    const registry = createAgentMetrics();
    const m = startIpamMetrics({ registry, datastore: ds, ipam, intervalMs: 60_000, logger: silentLogger });
    await m.refresh();
    const text = await registry.metrics();
    expect(text).toContain('margay_ipam_pool_addresses{pool="a",state="capacity"} 256');
    expect(text).toContain('margay_ipam_pool_addresses{pool="a",state="in_use"} 4');
    expect(text).toContain('margay_ipam_pool_addresses{pool="a",state="borrowed"} 1');
    expect(text).toContain('margay_ipam_pool_addresses{pool="b",state="in_use"} 0');
    // A deleted pool disappears from the gauge at the next refresh.
    await ds.delete({ kind: "IPPool", name: "b" });
    ipam.invalidate();
    await m.refresh();
    expect(await registry.metrics()).not.toContain('pool="b"');
    m.close();
    await ipam.close();
    await ds.close();
  });

  it("a failed refresh keeps the last figures and is logged, not thrown", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    const ipam = createIpam({ datastore: ds });
    const registry = createAgentMetrics();
    const warnings: unknown[] = [];
    const logger = { ...silentLogger, warn: (a: unknown) => warnings.push(a), child: () => logger };
    const m = startIpamMetrics({ registry, datastore: ds, ipam, intervalMs: 60_000, logger });
    await m.refresh();
    await ds.close();
    await expect(m.refresh()).resolves.toBeUndefined();
    expect(warnings.length).toBeGreaterThan(0);
    m.close();
    await ipam.close();
  });
});
