/**
 * startBgp on the real dataplane pipeline (syncer → route calculator → the in-memory driver) with the
 * real IPAM: the block IPAM gives this node reaches a BGP peer, and a route the peer sends comes out of
 * the pipeline as a programmed route with the peer as next hop.
 */
import type { RouteUpdate } from "@margay/dataplane-contract";
import { createSpeaker } from "@margay/bgp";
import { createMemoryDataplane } from "@margay/dataplane";
import { createMemoryDatastore } from "@margay/datastore";
import { createIpam } from "@margay/ipam";
import { afterEach, describe, expect, it } from "vitest";
import { apiValidator } from "../../config/api-validator.js";
import { startDataplanePipeline } from "../dataplane/pipeline.js";
import { startBgp } from "./agent.js";
import { eventually, freePort, testConfig, testContext } from "./fixtures.test-util.js";

const SELF = "127.0.0.51";
const TOR = "127.0.0.52";
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

describe("startBgp on the real pipeline", () => {
  it("advertises the IPAM block of this node and programs the peer's routes", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanup.push(() => ds.close());
    const v1 = "margay.io/v1" as const;
    await ds.create({
      apiVersion: v1,
      kind: "IPPool",
      metadata: { name: "default" },
      spec: { cidr: "10.68.0.0/16", blockSize: 26 },
    });
    await ds.create({
      apiVersion: v1,
      kind: "Node",
      metadata: { name: "node-a" },
      spec: { bgp: { ipv4Address: `${SELF}/8` } },
    });
    const tor = await createSpeaker({ asn: 65100, routerId: "10.255.5.2", listen: [{ host: TOR, port: 0 }] });
    cleanup.push(() => tor.close());
    tor.addPeer({ address: SELF, asn: 64512, passive: true });
    await ds.create({
      apiVersion: v1,
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: { listenPort: await freePort(SELF) },
    });
    await ds.create({
      apiVersion: v1,
      kind: "BGPPeer",
      metadata: { name: "tor" },
      spec: { peerIP: `${TOR}:${tor.listening[0]!.port}`, asNumber: 65100 },
    });
    const pod = await createIpam({ datastore: ds }).autoAssign({
      handleId: "pod-a",
      node: "node-a",
      num4: 1,
    });
    expect(pod.ipv4).toHaveLength(1);

    const t = testContext(ds, testConfig("node-a"));
    const addresses = { ipv4: `${SELF}/8`, ipv6: undefined, interface: "lo", interfaceMtu: 65536 };
    const pipeline = await startDataplanePipeline(t.ctx, {
      driver: createMemoryDataplane({ nodeName: "node-a" }),
      addresses,
    });
    cleanup.push(() => pipeline.close());
    const bgp = startBgp(t.ctx, { pipeline, addresses });
    cleanup.push(() => bgp.close());

    const routes = () =>
      [...pipeline.routes().values()].filter((u): u is RouteUpdate => u.kind === "route-update");
    const block = await eventually(
      () => routes().find((u) => u.type === "local-block"),
      "our block programmed",
    );
    expect(block.dst.startsWith("10.68.")).toBe(true);
    const advertised = await eventually(() => tor.route(block.dst), "our block at the peer");
    expect(advertised.nextHops).toEqual([SELF]);

    tor.originate("192.0.2.0/24");
    const learned = await eventually(
      () => routes().find((u) => u.dst === "192.0.2.0/24"),
      "the peer's route programmed",
    );
    expect(learned.type).toBe("remote-block");
    expect(learned.nextHops?.map((h) => h.via)).toEqual([TOR]);
    tor.withdraw("192.0.2.0/24");
    await eventually(() => routes().every((u) => u.dst !== "192.0.2.0/24"), "the withdrawal programmed");
  });
});
