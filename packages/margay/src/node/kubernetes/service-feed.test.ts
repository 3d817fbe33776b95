import type { BGPConfiguration } from "@margay/api";
import { createHttpTransport, type KubeTransport } from "@margay/kube-adapter";
import { type FakeKubeApiServer, startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deriveServiceAdvertisement } from "../bgp/service-advertisement.js";
import { type ServiceFeed, startServiceFeed } from "./service-feed.js";

let server: FakeKubeApiServer;
let transport: KubeTransport;
let feed: ServiceFeed | undefined;

beforeEach(async () => {
  server = await startFakeKubeApiServer();
  transport = createHttpTransport({ server: server.url });
});
afterEach(async () => {
  await feed?.close();
  feed = undefined;
  transport.close();
  await server.close();
});

const changes = (f: ServiceFeed) => {
  let n = 0;
  const waiters: (() => void)[] = [];
  f.onChange(() => {
    n++;
    for (const w of waiters.splice(0)) w();
  });
  return {
    get count() {
      return n;
    },
    next: () => new Promise<void>((r) => waiters.push(r)),
  };
};

describe("service feed (Services + EndpointSlices informers)", () => {
  it("keeps slim copies and tells of changes; the calculation over it follows a pod moving nodes", async () => {
    server.create("services", {
      metadata: {
        name: "web",
        namespace: "shop",
        annotations: { big: "x".repeat(10_000) },
        managedFields: [{ manager: "kubectl" }],
      },
      spec: {
        type: "LoadBalancer",
        clusterIP: "10.96.0.10",
        externalTrafficPolicy: "Local",
        selector: { app: "web" },
        ports: [{ port: 80 }],
      },
    });
    server.create("endpointslices", {
      metadata: { name: "web-1", namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
      addressType: "IPv4",
      endpoints: [
        { addresses: ["10.244.1.5"], nodeName: "node-a", targetRef: { kind: "Pod", name: "web-0" } },
      ],
      ports: [{ port: 8080 }],
    });
    feed = startServiceFeed({ transport });
    const c = changes(feed);
    await c.next();
    expect(feed.synced).toBe(true);
    const [svc] = [...feed.services()];
    expect(svc).toEqual({
      metadata: { name: "web", namespace: "shop", resourceVersion: expect.any(String) },
      spec: { type: "LoadBalancer", clusterIP: "10.96.0.10", externalTrafficPolicy: "Local" },
    });
    const [slice] = [...feed.endpointSlices()];
    expect(slice!.endpoints).toEqual([{ addresses: ["10.244.1.5"], nodeName: "node-a" }]);

    const config = {
      apiVersion: "margay.io/v1",
      kind: "BGPConfiguration",
      metadata: { name: "default" },
      spec: { serviceClusterIPs: [{ cidr: "10.96.0.0/12" }] },
    } satisfies BGPConfiguration;
    const on = (node: string) =>
      deriveServiceAdvertisement({
        nodeName: node,
        configurations: [config],
        services: feed!.services(),
        endpointSlices: feed!.endpointSlices(),
      }).prefixes.map((p) => p.prefix);
    expect(on("node-a")).toEqual(["10.96.0.0/12", "10.96.0.10/32"]);
    expect(on("node-b")).toEqual(["10.96.0.0/12"]);

    const moved = c.next();
    server.update("endpointslices", {
      ...server.get("endpointslices", "shop", "web-1")!,
      endpoints: [{ addresses: ["10.244.2.5"], nodeName: "node-b" }],
    } as never);
    await moved;
    expect(on("node-a")).toEqual(["10.96.0.0/12"]);
    expect(on("node-b")).toEqual(["10.96.0.0/12", "10.96.0.10/32"]);
  });
});
