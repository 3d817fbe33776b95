import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

// README example: start
import { createRouteCalculator } from "@margay/routing";

const routes = createRouteCalculator({ nodeName: "host-a" });
routes.applyAll([
  {
    kind: "pool",
    name: "default",
    pool: { cidr: "10.65.0.0/16", vxlanMode: "CrossSubnet", natOutgoing: true },
  },
  {
    kind: "node",
    name: "host-a",
    node: {
      bgp: { ipv4Address: "10.0.0.1/24" },
      ipv4VXLANTunnelAddr: "10.65.1.0",
      vxlanTunnelMACAddr: "66:00:00:00:00:0a",
    },
  },
  {
    kind: "node",
    name: "host-c",
    node: {
      bgp: { ipv4Address: "10.0.1.3/24" },
      ipv4VXLANTunnelAddr: "10.65.3.0",
      vxlanTunnelMACAddr: "66:00:00:00:00:0c",
    },
  },
  {
    kind: "block",
    cidr: "10.65.3.0/26",
    block: { affinity: "host:host-c", allocations: [], attributes: [] },
  },
]);
const remote = routes.snapshot().find((u) => u.kind === "route-update" && u.dst === "10.65.3.0/26");
console.log(remote);
// { kind: "route-update", dst: "10.65.3.0/26", type: "remote-block", nodes: ["host-c"],
//   nextHops: [{ via: "10.65.3.0", encapsulation: "vxlan", node: "host-c" }] }

// A top-of-rack peer's route: an IP next hop, no node.
const diff = routes.apply({
  kind: "learned",
  source: "10.0.0.254",
  prefix: "192.168.50.0/24",
  nextHops: ["10.0.0.254"],
});
console.log(diff);
// [{ kind: "route-update", dst: "192.168.50.0/24", type: "remote-block",
//    nextHops: [{ via: "10.0.0.254", encapsulation: "none" }] }]
console.log(routes.natOutgoing()); // { masqueradePools: ["10.65.0.0/16"], allPools: ["10.65.0.0/16"] }
// README example: end

it("runs the README example, and the README shows exactly this code", () => {
  expect(remote).toEqual({
    kind: "route-update",
    dst: "10.65.3.0/26",
    type: "remote-block",
    nodes: ["host-c"],
    nextHops: [{ via: "10.65.3.0", encapsulation: "vxlan", node: "host-c" }],
  });
  expect(diff).toEqual([
    {
      kind: "route-update",
      dst: "192.168.50.0/24",
      type: "remote-block",
      nextHops: [{ via: "10.0.0.254", encapsulation: "none" }],
    },
  ]);
  expect(routes.natOutgoing()).toEqual({ masqueradePools: ["10.65.0.0/16"], allPools: ["10.65.0.0/16"] });
  const source = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  expect(readme).toContain(code.trim());
});
