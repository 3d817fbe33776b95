import { DEFAULT_WORKLOAD_INTERFACE_PREFIX, validateResource, workloadInterfaceName } from "@margay/api";
import { describe, expect, it } from "vitest";
import type { KubePod } from "../kube-types.js";
import { convertPod, podInterfaceName, podSkipReason, workloadEndpointName } from "./pod.js";

const base: KubePod = {
  metadata: { name: "web-7d4f9", namespace: "shop", uid: "u1", labels: { app: "web", tier: "front" } },
  spec: {
    nodeName: "ip-10-0-0-1.ec2.internal",
    serviceAccountName: "web-sa",
    containers: [
      {
        name: "app",
        ports: [
          { name: "http", containerPort: 8080 },
          { name: "metrics", containerPort: 9090, protocol: "TCP", hostPort: 19090, hostIP: "10.0.0.1" },
          { containerPort: 7000 },
        ],
      },
      { name: "dns", ports: [{ name: "dns", containerPort: 53, protocol: "UDP" }] },
    ],
    initContainers: [
      { name: "once", ports: [{ name: "setup", containerPort: 1 }] },
      { name: "proxy", restartPolicy: "Always", ports: [{ name: "proxy", containerPort: 15001 }] },
    ],
  },
  status: {
    phase: "Running",
    podIP: "10.244.1.5",
    podIPs: [{ ip: "10.244.1.5" }, { ip: "fd00:0:0:0::1:5" }],
  },
};

describe("Calico names", () => {
  it("escapes dashes inside each part of the endpoint name", () => {
    expect(workloadEndpointName("ip-10-0-0-1.ec2.internal", "web-7d4f9")).toBe(
      "ip--10--0--0--1.ec2.internal-k8s-web--7d4f9-eth0",
    );
    expect(workloadEndpointName("node1", "nginx")).toBe("node1-k8s-nginx-eth0");
  });

  it("derives the host interface from SHA-1 of <namespace>.<pod>, 15 characters", () => {
    // Golden values: `echo -n default.nginx | sha1sum` (coreutils); with `cali`, 11 hex digits as Calico's CNI.
    expect(podInterfaceName("default", "nginx", "cali")).toBe("calic440f455693");
    expect(podInterfaceName("kube-system", "coredns-5d78c9869d-abcde", "cali")).toBe("cali4d5f75c480c");
    expect(podInterfaceName("default", "nginx")).toBe("mgyc440f455693b");
    expect(podInterfaceName("default", "nginx", "mg")).toBe("mgc440f455693b6");
  });

  it("names the interface with the one function of @margay/api and its default prefix", () => {
    const pod = {
      metadata: { name: "web", namespace: "shop" },
      spec: { nodeName: "n1", containers: [] },
      status: { podIP: "10.0.0.5" },
    } as unknown as Parameters<typeof convertPod>[0];
    const name = workloadInterfaceName({ namespace: "shop", workload: "web" });
    expect(convertPod(pod)?.spec.interfaceName).toBe(name);
    expect(name.startsWith(DEFAULT_WORKLOAD_INTERFACE_PREFIX)).toBe(true);
    expect(convertPod(pod, { interfacePrefix: "cali" })?.spec.interfaceName).toBe(
      workloadInterfaceName({ namespace: "shop", workload: "web" }, "cali"),
    );
    expect(() => convertPod(pod, { interfacePrefix: "Bad!" })).toThrow(/prefix/);
  });
});

describe("convertPod", () => {
  it("converts labels, namespace, service account, IPs and named ports into a valid WorkloadEndpoint", () => {
    const wep = convertPod(base)!;
    expect(wep).toEqual({
      apiVersion: "margay.io/v1",
      kind: "WorkloadEndpoint",
      metadata: {
        name: "ip--10--0--0--1.ec2.internal-k8s-web--7d4f9-eth0",
        namespace: "shop",
        labels: {
          app: "web",
          tier: "front",
          "projectcalico.org/namespace": "shop",
          "projectcalico.org/orchestrator": "k8s",
          "projectcalico.org/serviceaccount": "web-sa",
        },
      },
      spec: {
        orchestrator: "k8s",
        node: "ip-10-0-0-1.ec2.internal",
        pod: "web-7d4f9",
        endpoint: "eth0",
        serviceAccountName: "web-sa",
        ipNetworks: ["10.244.1.5/32", "fd00::1:5/128"],
        profiles: ["kns.shop", "ksa.shop.web-sa"],
        interfaceName: podInterfaceName("shop", "web-7d4f9"),
        ports: [
          { name: "http", protocol: "TCP", port: 8080 },
          { name: "metrics", protocol: "TCP", port: 9090, hostPort: 19090, hostIP: "10.0.0.1" },
          { name: "dns", protocol: "UDP", port: 53 },
          { name: "proxy", protocol: "TCP", port: 15001 },
        ],
      },
    });
    expect(() => validateResource(wep)).not.toThrow();
  });

  it("falls back to status.podIP, and leaves ipNetworks out before an address is assigned", () => {
    const v4only = convertPod({ ...base, status: { phase: "Running", podIP: "10.1.1.1" } })!;
    expect(v4only.spec.ipNetworks).toEqual(["10.1.1.1/32"]);
    const pending = convertPod({ ...base, status: { phase: "Pending" } })!;
    expect(pending.spec.ipNetworks).toBeUndefined();
    expect(() => validateResource(pending)).not.toThrow();
  });

  it("omits the service-account label and profile when the pod names none", () => {
    const wep = convertPod({ ...base, spec: { ...base.spec, serviceAccountName: undefined } })!;
    expect(wep.metadata.labels?.["projectcalico.org/serviceaccount"]).toBeUndefined();
    expect(wep.spec.profiles).toEqual(["kns.shop"]);
  });

  it("a pod cannot claim a service account by labelling itself with the service-account label", () => {
    const wep = convertPod({
      ...base,
      metadata: { ...base.metadata, labels: { app: "web", "projectcalico.org/serviceaccount": "admin" } },
      spec: { ...base.spec, serviceAccountName: undefined },
    })!;
    expect(wep.metadata.labels?.["projectcalico.org/serviceaccount"]).toBeUndefined();
    expect(wep.metadata.labels?.app).toBe("web");
  });

  it("skips host-network, finished and unscheduled pods", () => {
    const cases: [KubePod, string][] = [
      [{ ...base, spec: { ...base.spec, hostNetwork: true } }, "host-network"],
      [{ ...base, status: { ...base.status, phase: "Succeeded" } }, "finished"],
      [{ ...base, status: { ...base.status, phase: "Failed" } }, "finished"],
      [{ ...base, spec: { ...base.spec, nodeName: undefined } }, "unscheduled"],
    ];
    for (const [pod, reason] of cases) {
      expect(podSkipReason(pod)).toBe(reason);
      expect(convertPod(pod)).toBeUndefined();
    }
    expect(podSkipReason(base)).toBeUndefined();
  });
});
