/**
 * The pipeline on a real etcd reached through a TCP proxy the test can cut: while etcd is unreachable the
 * datastore component is unready with the syncer's error and the dataplane keeps everything it has; when
 * etcd is back the datastore turns ready and what changed meanwhile is programmed.
 */
import { randomBytes } from "node:crypto";
import { createMemoryDataplane } from "@margay/dataplane";
import { createEtcdDatastore, type Datastore } from "@margay/datastore";
import { type EtcdServer, startEtcd, startTcpProxy, type TcpProxy } from "@margay/datastore/testing";
import { createIpam } from "@margay/ipam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiValidator } from "../../config/api-validator.js";
import { startDataplanePipeline } from "./pipeline.js";
import { allowPolicy, eventually, node, pool, testContext, wep } from "./pipeline.test-util.js";

const WAIT_MS = 30_000;

let etcd: EtcdServer;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
  cleanup.push(() => etcd.stop());
});

afterAll(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

describe("dataplane pipeline on a real etcd", () => {
  it("an etcd outage makes the datastore unready, keeps the dataplane, and resyncs afterwards", async () => {
    const prefix = `/margay-pipeline-${randomBytes(4).toString("hex")}`;
    const proxy: TcpProxy = await startTcpProxy(new URL(etcd.endpoints[0]!));
    const agentStore: Datastore = createEtcdDatastore({
      endpoints: [proxy.endpoint],
      prefix,
      validate: apiValidator,
      watchReconnectMaxDelayMs: 200,
    });
    const admin: Datastore = createEtcdDatastore({
      endpoints: etcd.endpoints,
      prefix,
      validate: apiValidator,
    });
    cleanup.push(
      () => agentStore.close(),
      () => admin.close(),
      () => proxy.up(),
    );

    await admin.create(pool("default", "10.65.0.0/16"));
    await admin.create(node("node-a", "10.77.0.1/24"));
    await admin.create(node("node-b", "10.77.0.2/24"));
    const ipam = createIpam({ datastore: admin });
    const podA = (await ipam.autoAssign({ handleId: "web", node: "node-a", num4: 1 })).ipv4[0]!;
    const podB = (await ipam.autoAssign({ handleId: "db", node: "node-b", num4: 1 })).ipv4[0]!;
    const w = await admin.create(
      wep("shop", "node--a-k8s-web-eth0", "node-a", podA.ip, "mgyweb0", { app: "web" }),
    );

    const ctx = testContext({ datastore: agentStore });
    const mem = createMemoryDataplane({ nodeName: "node-a" });
    const p = await startDataplanePipeline(ctx, {
      driver: mem,
      syncerRetry: { initialMs: 50, maxMs: 500 },
      datastoreProbeMs: 200,
    });
    cleanup.push(() => p.close());
    await p.waitForEndpoint("shop/node--a-k8s-web-eth0", w.metadata.resourceVersion!);
    expect(ctx.health.snapshot().components.datastore).toEqual({ live: true, ready: true });
    const before = await mem.snapshot();
    expect(before.routes.map((r) => r.dst)).toEqual(expect.arrayContaining([podA.block, podB.block]));

    await proxy.down();
    // A change made while the agent cannot see etcd.
    await admin.create(allowPolicy("during-outage", "app == 'web'", 8443));
    await eventually(() => ctx.health.snapshot().components.datastore?.ready === false, WAIT_MS);
    expect(ctx.health.snapshot().components.datastore?.reason).toMatch(/^datastore unavailable: /);
    // The dataplane keeps what it has: nothing withdrawn, still ready.
    expect(ctx.health.snapshot().components.dataplane).toEqual({ live: true, ready: true });
    expect(await mem.snapshot()).toEqual(before);

    await proxy.up();
    await eventually(() => ctx.health.snapshot().components.datastore?.ready === true, WAIT_MS);
    await eventually(
      async () => (await mem.snapshot()).policies.some((id) => id.includes("during-outage")),
      WAIT_MS,
    );
    expect((await mem.snapshot()).routes).toEqual(before.routes);
  });
});
