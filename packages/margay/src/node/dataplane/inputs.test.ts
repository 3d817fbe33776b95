import { createRecordingLogger } from "@margay/api";
import type { HostUpdate } from "@margay/dataplane-contract";
import type { SyncerEvent } from "@margay/datastore";
import { IpamKind } from "@margay/ipam";
import { createCalcGraph } from "@margay/policy";
import { createRouteCalculator } from "@margay/routing";
import { describe, expect, it } from "vitest";
import { createPipelineInputs, PIPELINE_KINDS } from "./inputs.js";
import { node, pool, wep } from "./pipeline.test-util.js";

function setup(addresses = true) {
  const log = createRecordingLogger();
  const routes = createRouteCalculator({ nodeName: "node-a" });
  const calcGraph = createCalcGraph({ nodeName: "node-a" });
  const inputs = createPipelineInputs({
    nodeName: "node-a",
    addresses: addresses
      ? { ipv4: "10.77.0.1/24", ipv6: "fd00:77::1/64", interface: "eth0", interfaceMtu: 1500 }
      : undefined,
    calcGraph,
    routes,
    log,
  });
  return { log, routes, calcGraph, inputs };
}

let rev = 1;
const up = (object: { kind: string; metadata: { name: string; namespace?: string } }): SyncerEvent => ({
  type: "upsert",
  kind: object.kind,
  key: {
    kind: object.kind,
    name: object.metadata.name,
    ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}),
  },
  revision: String(rev++),
  object: object as never,
});
const del = (kind: string, name: string, namespace?: string): SyncerEvent => ({
  type: "delete",
  kind,
  key: { kind, name, ...(namespace ? { namespace } : {}) },
  revision: String(rev++),
});
const block = (name: string, cidr: string, host: string) => ({
  kind: IpamKind.Block,
  metadata: { name },
  spec: { cidr, affinity: `host:${host}`, allocations: [], unallocated: [], attributes: [], deleted: false },
});

describe("pipeline inputs", () => {
  it("follows every policy kind and the route kinds, each once", () => {
    expect(new Set(PIPELINE_KINDS).size).toBe(PIPELINE_KINDS.length);
    expect([...PIPELINE_KINDS].sort()).toEqual(
      [
        "BlockAffinity",
        "GlobalNetworkPolicy",
        "GlobalNetworkSet",
        "HostEndpoint",
        "IPAMBlock",
        "IPPool",
        "NetworkPolicy",
        "NetworkSet",
        "Node",
        "Profile",
        "Tier",
        "WorkloadEndpoint",
      ].sort(),
    );
  });

  it("gives this node its chosen addresses until its Node names some, and again after the Node goes", () => {
    const { routes, inputs } = setup();
    const host = () =>
      routes.snapshot().find((u): u is HostUpdate => u.kind === "host-update" && u.node === "node-a");
    expect(host()).toEqual({
      kind: "host-update",
      node: "node-a",
      addresses: ["10.77.0.1/24", "fd00:77::1/64"],
    });
    // A Node without addresses (registration not finished): the chosen addresses fill in.
    inputs.apply(up({ kind: "Node", metadata: { name: "node-a" }, spec: {} } as never));
    expect(host()?.addresses).toEqual(["10.77.0.1/24", "fd00:77::1/64"]);
    // The Node's own address wins.
    inputs.apply(up(node("node-a", "10.77.0.9/24")));
    expect(host()?.addresses).toEqual(["10.77.0.9/24"]);
    inputs.apply(del("Node", "node-a"));
    expect(host()?.addresses).toEqual(["10.77.0.1/24", "fd00:77::1/64"]);
  });

  it("without chosen addresses, this node is only what its Node says", () => {
    const { routes } = setup(false);
    expect(routes.snapshot()).toEqual([]);
  });

  it("remembers a block's CIDR so its deletion (key only) removes its route", () => {
    const { inputs, routes } = setup();
    inputs.apply(up(pool("p", "10.65.0.0/16")));
    inputs.apply(up(node("node-b", "10.77.0.2/24")));
    const added = inputs.apply(up(block("10-65-1-0-26", "10.65.1.0/26", "node-b")));
    expect(added).toContainEqual(expect.objectContaining({ kind: "route-update", dst: "10.65.1.0/26" }));
    expect(inputs.apply(del(IpamKind.Block, "10-65-1-0-26"))).toEqual([
      { kind: "route-remove", dst: "10.65.1.0/26" },
    ]);
    expect(routes.snapshot().some((u) => u.kind === "route-update")).toBe(false);
  });

  it("routes only this node's endpoints, and drops the route when an endpoint moves away", () => {
    const { inputs, calcGraph } = setup();
    const local = wep("shop", "a", "node-a", "10.65.0.5", "mgya");
    expect(inputs.apply(up(local))).toEqual([
      { kind: "route-update", dst: "10.65.0.5/32", type: "local-workload", ifname: "mgya" },
    ]);
    expect(inputs.apply(up(wep("shop", "b", "node-b", "10.65.1.5", "mgyb")))).toEqual([]);
    expect(inputs.apply(up(wep("shop", "a", "node-b", "10.65.0.5", "mgya")))).toEqual([
      { kind: "route-remove", dst: "10.65.0.5/32" },
    ]);
    // Both feed policy (the remote ones for IP sets), only local ones are local endpoints.
    expect(calcGraph.stats().localEndpoints).toBe(0);
    expect(calcGraph.stats().items).toBe(2);
  });

  it("never throws on malformed objects: logged and treated as absent", () => {
    const { inputs, log, routes } = setup();
    inputs.apply(up(pool("p", "10.65.0.0/16")));
    expect(() => inputs.apply(up(pool("p", "10.65.0.0/99")))).not.toThrow();
    expect(routes.snapshot().some((u) => u.kind === "pool-update")).toBe(false);
    expect(() => inputs.apply(up({ kind: IpamKind.Block, metadata: { name: "x" } } as never))).not.toThrow();
    expect(() =>
      inputs.apply(up({ kind: "WorkloadEndpoint", metadata: { name: "w", namespace: "n" } } as never)),
    ).not.toThrow();
    expect(() =>
      inputs.apply(
        up({ kind: "GlobalNetworkPolicy", metadata: { name: "g" }, spec: { selector: "((" } } as never),
      ),
    ).not.toThrow();
    expect(inputs.rejected).toBeGreaterThan(0);
    expect(log.records.map((r) => r.message)).toContain("route input invalid; treated as absent");
  });
});
