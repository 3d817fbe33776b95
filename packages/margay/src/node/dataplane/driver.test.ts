import { fileURLToPath } from "node:url";
import { CURRENT_NETNS } from "@margay/dataplane";
import { describe, expect, it } from "vitest";
import { createAgentDriver, endpointToHostVerdict, linuxDriverOptions } from "./driver.js";
import { isPipelineError } from "./errors.js";
import { startDataplanePipeline } from "./pipeline.js";
import { eventually, node, pool, testAgentConfig, testContext } from "./pipeline.test-util.js";

// The dataplane package's own protocol fixture: the memory driver served on stdin/stdout, from sources.
const childFixture = fileURLToPath(
  new URL("../../../../dataplane/src/protocol/child-fixture.ts", import.meta.url),
);

describe("createAgentDriver", () => {
  it("maps the agent configuration onto the Linux driver's options", () => {
    const config = testAgentConfig({
      nodeName: "host-7",
      interfacePrefixes: ["mgy", "cali"],
      vxlan: { port: 8472, vni: 77, device: "vx.test" },
      dataplane: {
        driver: "linux",
        remoteCommand: undefined,
        reconcileIntervalMs: 60_000,
        routeProtocol: 91,
        endpointToHostAction: "Drop",
        nftTable: "mgtest",
      },
    });
    const o = linuxDriverOptions(config, { mtu: 1410 });
    expect(o).toMatchObject({
      netns: CURRENT_NETNS,
      nodeName: "host-7",
      routeProtocol: 91,
      vxlanDevice: "vx.test",
      vxlanVni: 77,
      vxlanPort: 8472,
      vxlanMtu: 1410,
      reconcileIntervalMs: 60_000,
      nftables: { enabled: true, table: "mgtest", workloadPrefixes: ["mgy", "cali"], endpointToHost: "drop" },
    });
  });

  it("maps Calico's endpoint-to-host actions onto nftables verdicts", () => {
    expect(endpointToHostVerdict("Drop")).toBe("drop");
    expect(endpointToHostVerdict("Accept")).toBe("accept");
    // Return: leave the decision to the host's other rules; an accept in our table does exactly that.
    expect(endpointToHostVerdict("Return")).toBe("accept");
  });

  it("refuses a remote driver without a command, and an unknown driver", async () => {
    const ctx = testContext({
      config: { dataplane: { ...testAgentConfig().dataplane, driver: "remote", remoteCommand: [] } },
    });
    await expect(createAgentDriver(ctx)).rejects.toSatisfy(
      (e) => isPipelineError(e, "invalid-options") && e.details.field === "dataplane.remoteCommand",
    );
    const odd = testContext({
      config: { dataplane: { ...testAgentConfig().dataplane, driver: "ebpf" as "linux" } },
    });
    await expect(createAgentDriver(odd)).rejects.toSatisfy((e) => isPipelineError(e, "invalid-options"));
  });

  it("runs the pipeline through an out-of-process driver over the protobuf protocol", async () => {
    const ctx = testContext({
      config: {
        dataplane: {
          ...testAgentConfig().dataplane,
          driver: "remote",
          remoteCommand: [process.execPath, "--import", "tsx", childFixture, "memory", "node-a"],
        },
      },
    });
    await ctx.datastore.create(pool("default", "10.65.0.0/16"));
    await ctx.datastore.create(node("node-a", "10.77.0.1/24"));
    await ctx.datastore.create(node("node-b", "10.77.0.2/24"));
    const driver = await createAgentDriver(ctx);
    expect(driver.teardown).toBeUndefined();
    const p = await startDataplanePipeline(ctx, { driver });
    try {
      p.learned([
        { kind: "learned", source: "10.77.0.254", prefix: "192.168.7.0/24", nextHops: ["10.77.0.2"] },
      ]);
      await eventually(async () => (await driver.snapshot()).routes.some((r) => r.dst === "192.168.7.0/24"));
      expect(p.inSync).toBe(true);
    } finally {
      await p.close({ teardown: true }); // a remote driver cannot tear down: logged, not thrown
    }
    expect(
      ctx.logger.records.some(
        (r) => r.message === "the dataplane driver cannot tear down; its state is left in place",
      ),
    ).toBe(true);
  });
});
