/**
 * startBgp's service advertisement over a memory datastore, a fake pipeline and a fake Services/EndpointSlices
 * feed, against a plain `@margay/bgp` speaker as the top-of-rack peer (loopback 127.0.0.7x).
 */
import type { BGPConfiguration } from "@margay/api";
import { createSpeaker, type Speaker } from "@margay/bgp";
import { createMemoryDatastore, type MemoryDatastore } from "@margay/datastore";
import type { KubeEndpointSlice, KubeService } from "@margay/kube-adapter";
import { afterEach, describe, expect, it } from "vitest";
import type { ServiceFeed } from "../kubernetes/service-feed.js";
import { startBgp } from "./agent.js";
import { eventually, FakePipeline, freePort, testConfig, testContext } from "./fixtures.test-util.js";

const SELF = "127.0.0.71";
const TOR = "127.0.0.72";
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

/** A feed the test changes by hand. */
function fakeFeed() {
  const services = new Map<string, KubeService>();
  const slices = new Map<string, KubeEndpointSlice>();
  const listeners = new Set<() => void>();
  const feed: ServiceFeed = {
    services: () => services.values(),
    endpointSlices: () => slices.values(),
    synced: true,
    onChange(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    async close() {},
  };
  const changed = () => {
    for (const l of listeners) l();
  };
  return { feed, services, slices, changed };
}

const RANGES: BGPConfiguration["spec"] = {
  serviceClusterIPs: [{ cidr: "10.96.0.0/12" }],
  serviceLoadBalancerIPs: [{ cidr: "198.51.100.0/24" }],
};

async function setup() {
  const ds: MemoryDatastore = createMemoryDatastore();
  cleanup.push(() => ds.close());
  const listenPort = await freePort(SELF);
  const tor: Speaker = await createSpeaker({
    asn: 65100,
    routerId: "10.255.7.2",
    listen: [{ host: TOR, port: 0 }],
    idleHoldTime: 0,
  });
  cleanup.push(() => tor.close());
  tor.addPeer({ address: SELF, asn: 64512, passive: true });
  await ds.create({
    apiVersion: "margay.io/v1",
    kind: "Node",
    metadata: { name: "node-a" },
    spec: { bgp: { ipv4Address: `${SELF}/8` } },
  });
  const config = await ds.create<BGPConfiguration>({
    apiVersion: "margay.io/v1",
    kind: "BGPConfiguration",
    metadata: { name: "default" },
    spec: { listenPort, ...RANGES },
  });
  await ds.create({
    apiVersion: "margay.io/v1",
    kind: "BGPPeer",
    metadata: { name: "tor" },
    spec: { peerIP: `${TOR}:${tor.listening[0]!.port}`, asNumber: 65100 },
  });
  const t = testContext(ds, testConfig("node-a"));
  const pipeline = new FakePipeline();
  const f = fakeFeed();
  const agent = startBgp(t.ctx, {
    pipeline,
    addresses: { ipv4: `${SELF}/8`, ipv6: undefined, interface: "lo", interfaceMtu: 65536 },
    services: f.feed,
  });
  cleanup.push(() => agent.close());
  pipeline.apply([{ kind: "route-update", dst: "10.65.1.0/26", type: "local-block" }, { kind: "in-sync" }]);
  return { ds, tor, pipeline, agent, config, ...f };
}

describe("startBgp: service IPs", () => {
  it("ranges always; a Local service's /32 while an endpoint runs here; peers' routes in the ranges are not taken", async () => {
    const s = await setup();
    await eventually(() => s.tor.route("10.96.0.0/12"), "the cluster IP range at the ToR");
    await eventually(() => s.tor.route("198.51.100.0/24"), "the LB range at the ToR");
    await eventually(() => s.tor.route("10.65.1.0/26"), "our block at the ToR");

    s.services.set("shop/web", {
      metadata: { name: "web", namespace: "shop" },
      spec: { type: "LoadBalancer", clusterIP: "10.96.0.10", externalTrafficPolicy: "Local" },
      status: { loadBalancer: { ingress: [{ ip: "198.51.100.9" }] } },
    });
    s.slices.set("shop/web-1", {
      metadata: { name: "web-1", namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
      addressType: "IPv4",
      endpoints: [{ addresses: ["10.65.1.5"], nodeName: "node-b" }],
    });
    s.changed();
    // The endpoint runs on another node: no host route from here.
    await new Promise((r) => setTimeout(r, 300));
    expect(s.tor.route("10.96.0.10/32")).toBeUndefined();

    s.slices.get("shop/web-1")!.endpoints = [{ addresses: ["10.65.1.5"], nodeName: "node-a" }];
    s.changed();
    await eventually(() => s.tor.route("10.96.0.10/32"), "the service's /32 at the ToR");
    await eventually(() => s.tor.route("198.51.100.9/32"), "the LB IP's /32 at the ToR");

    // Routes a peer sends inside the ranges are not imported; others are.
    s.tor.originate("10.96.5.0/24");
    s.tor.originate("192.0.2.0/24");
    await eventually(() => s.pipeline.learnedRoutes.get("192.0.2.0/24"), "the ToR's route learned");
    expect(s.pipeline.learnedRoutes.has("10.96.5.0/24")).toBe(false);

    // The pod's route going away on the pipeline side does not touch service prefixes.
    s.pipeline.apply([{ kind: "route-remove", dst: "10.65.1.0/26" }]);
    await eventually(() => s.tor.route("10.65.1.0/26") === undefined, "our block withdrawn");
    expect(s.tor.route("10.96.0.10/32")).toBeDefined();

    // The endpoint leaves: the host routes are withdrawn, the ranges stay.
    s.slices.delete("shop/web-1");
    s.changed();
    await eventually(() => s.tor.route("10.96.0.10/32") === undefined, "the /32 withdrawn");
    await eventually(() => s.tor.route("198.51.100.9/32") === undefined, "the LB /32 withdrawn");
    expect(s.tor.route("10.96.0.0/12")).toBeDefined();

    // The ranges removed: withdrawn, and the ToR's route inside the old range is now taken.
    await s.ds.update<BGPConfiguration>({
      ...s.config,
      spec: { listenPort: s.config.spec.listenPort! },
    });
    await eventually(() => s.tor.route("10.96.0.0/12") === undefined, "the range withdrawn");
    await eventually(
      () => s.pipeline.learnedRoutes.get("10.96.5.0/24"),
      "the formerly rejected route learned",
    );
  });
});
