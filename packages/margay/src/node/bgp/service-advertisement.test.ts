import type { BGPConfiguration } from "@margay/api";
import type { KubeEndpointSlice, KubeService } from "@margay/kube-adapter";
import { describe, expect, it } from "vitest";
import {
  deriveServiceAdvertisement,
  isServicePrefix,
  servicesWithLocalEndpoints,
} from "./service-advertisement.js";

const config = (spec: BGPConfiguration["spec"], name = "default"): BGPConfiguration =>
  ({ apiVersion: "margay.io/v1", kind: "BGPConfiguration", metadata: { name }, spec }) as BGPConfiguration;

const RANGES = config({
  serviceClusterIPs: [{ cidr: "10.96.0.0/12" }, { cidr: "fd00:96::/108" }],
  serviceExternalIPs: [{ cidr: "192.0.2.0/24" }],
  serviceLoadBalancerIPs: [{ cidr: "198.51.100.0/24" }],
});

function service(name: string, spec: NonNullable<KubeService["spec"]>, lb?: string[]): KubeService {
  return {
    metadata: { name, namespace: "shop" },
    spec,
    ...(lb === undefined ? {} : { status: { loadBalancer: { ingress: lb.map((ip) => ({ ip })) } } }),
  };
}

function slice(svc: string, endpoints: { node: string; ready?: boolean }[], ns = "shop"): KubeEndpointSlice {
  return {
    metadata: { name: `${svc}-abc`, namespace: ns, labels: { "kubernetes.io/service-name": svc } },
    addressType: "IPv4",
    endpoints: endpoints.map((e, i) => ({
      addresses: [`10.244.0.${i + 1}`],
      nodeName: e.node,
      ...(e.ready === undefined ? {} : { conditions: { ready: e.ready } }),
    })),
  };
}

const prefixes = (r: ReturnType<typeof deriveServiceAdvertisement>) => r.prefixes.map((p) => p.prefix);
const CIDRS = ["10.96.0.0/12", "192.0.2.0/24", "198.51.100.0/24", "fd00:96::/108"];

describe("deriveServiceAdvertisement", () => {
  it("every node advertises the default BGPConfiguration's ranges, and nothing without them", () => {
    for (const node of ["a", "b"]) {
      expect(prefixes(deriveServiceAdvertisement({ nodeName: node, configurations: [RANGES] }))).toEqual(
        CIDRS,
      );
    }
    expect(deriveServiceAdvertisement({ nodeName: "a", configurations: [] }).prefixes).toEqual([]);
    // Only the default configuration carries service ranges (a node's is reported by deriveBgpPeers).
    const perNode = config({ serviceClusterIPs: [{ cidr: "10.96.0.0/12" }] }, "node.a");
    expect(deriveServiceAdvertisement({ nodeName: "a", configurations: [perNode] }).prefixes).toEqual([]);
  });

  it("an externalTrafficPolicy: Local service: its cluster, external and LB IPs as host routes, only on nodes with a ready endpoint", () => {
    const svc = service(
      "web",
      {
        type: "LoadBalancer",
        clusterIP: "10.96.0.10",
        clusterIPs: ["10.96.0.10", "fd00:96::a"],
        externalIPs: ["192.0.2.7"],
        externalTrafficPolicy: "Local",
      },
      ["198.51.100.9"],
    );
    const slices = [slice("web", [{ node: "a" }, { node: "b", ready: false }])];
    const on = (node: string) =>
      prefixes(
        deriveServiceAdvertisement({
          nodeName: node,
          configurations: [RANGES],
          services: [svc],
          endpointSlices: slices,
        }),
      );
    expect(on("a")).toEqual([
      "10.96.0.0/12",
      "10.96.0.10/32",
      "192.0.2.0/24",
      "192.0.2.7/32",
      "198.51.100.0/24",
      "198.51.100.9/32",
      "fd00:96::/108",
      "fd00:96::a/128",
    ]);
    // b's endpoint is not ready, c has none: the ranges only.
    expect(on("b")).toEqual(CIDRS);
    expect(on("c")).toEqual(CIDRS);
  });

  it("addresses outside every configured range are never advertised; Cluster services get no host route", () => {
    const local = service("out", {
      type: "LoadBalancer",
      clusterIP: "10.200.0.5",
      externalIPs: ["203.0.113.5"],
      externalTrafficPolicy: "Local",
    });
    const cluster = service("cl", {
      type: "NodePort",
      clusterIP: "10.96.0.11",
      externalTrafficPolicy: "Cluster",
    });
    const r = deriveServiceAdvertisement({
      nodeName: "a",
      configurations: [config({ serviceClusterIPs: [{ cidr: "10.96.0.0/12" }] })],
      services: [local, cluster],
      endpointSlices: [slice("out", [{ node: "a" }]), slice("cl", [{ node: "a" }])],
    });
    expect(prefixes(r)).toEqual(["10.96.0.0/12"]);
    // Without any range nothing at all, even with local endpoints.
    const none = deriveServiceAdvertisement({
      nodeName: "a",
      configurations: [],
      services: [service("x", { clusterIP: "10.96.0.12", externalTrafficPolicy: "Local" })],
      endpointSlices: [slice("x", [{ node: "a" }])],
    });
    expect(none.prefixes).toEqual([]);
  });

  it("headless services and slices of another namespace or service do not count", () => {
    const headless = service("h", { clusterIP: "None", externalTrafficPolicy: "Local" });
    const web = service("web", { type: "NodePort", clusterIP: "10.96.0.20", externalTrafficPolicy: "Local" });
    const r = deriveServiceAdvertisement({
      nodeName: "a",
      configurations: [RANGES],
      services: [headless, web],
      endpointSlices: [
        slice("h", [{ node: "a" }]),
        slice("web", [{ node: "a" }], "other"),
        slice("web2", [{ node: "a" }]),
      ],
    });
    expect(prefixes(r)).toEqual(CIDRS);
  });

  it("a headless service is skipped entirely: not even its external or load-balancer IPs (Calico)", () => {
    const headless = service(
      "h",
      { type: "LoadBalancer", clusterIP: "None", externalIPs: ["192.0.2.7"], externalTrafficPolicy: "Local" },
      ["198.51.100.7"],
    );
    const r = deriveServiceAdvertisement({
      nodeName: "a",
      configurations: [RANGES],
      services: [headless],
      endpointSlices: [slice("h", [{ node: "a" }])],
    });
    expect(prefixes(r)).toEqual(CIDRS);
  });

  it("reports malformed ranges and reads prefixes back as service prefixes", () => {
    const r = deriveServiceAdvertisement({
      nodeName: "a",
      configurations: [config({ serviceClusterIPs: [{ cidr: "10.96.0.0/12" }, { cidr: "nope" }] })],
    });
    expect(r.invalid).toEqual([{ field: "serviceClusterIPs", cidr: "nope" }]);
    expect(isServicePrefix("10.96.3.4/32", r.ranges)).toBe(true);
    expect(isServicePrefix("10.96.0.0/12", r.ranges)).toBe(true);
    expect(isServicePrefix("10.244.0.0/26", r.ranges)).toBe(false);
  });
});

describe("servicesWithLocalEndpoints", () => {
  it("an endpoint with ready unset is ready; one without addresses is not", () => {
    const s: KubeEndpointSlice = {
      metadata: { name: "e", namespace: "ns", labels: { "kubernetes.io/service-name": "svc" } },
      addressType: "IPv4",
      endpoints: [{ addresses: [], nodeName: "a" }],
    };
    expect([...servicesWithLocalEndpoints("a", [s])]).toEqual([]);
    s.endpoints = [{ addresses: ["10.0.0.1"], nodeName: "a" }];
    expect([...servicesWithLocalEndpoints("a", [s])]).toEqual(["ns/svc"]);
    s.endpoints = null;
    expect([...servicesWithLocalEndpoints("a", [s])]).toEqual([]);
  });
});
