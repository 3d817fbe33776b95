import { expect, it } from "vitest";

// README example: start
import { createMemoryDataplane, type DataplaneUpdate } from "@margay/dataplane";

const driver = createMemoryDataplane({ nodeName: "node-a" });
const state: DataplaneUpdate[] = [
  { kind: "host-update", node: "node-a", addresses: ["192.168.0.1/24"] },
  { kind: "host-update", node: "node-b", addresses: ["192.168.0.2/24"] },
  {
    kind: "pool-update",
    cidr: "10.244.0.0/16",
    encapsulation: "none",
    crossSubnet: false,
    natOutgoing: true,
  },
  { kind: "route-update", dst: "10.244.0.0/26", type: "local-block" },
  { kind: "route-update", dst: "10.244.1.0/26", type: "remote-block", nodes: ["node-b"] },
];
await driver.apply(state); // nothing is programmed yet: no in-sync
await driver.apply([{ kind: "in-sync" }]);
const { routes } = await driver.snapshot();
console.log(routes);
// [ { dst: "10.244.0.0/26", type: "blackhole", nextHops: [] },
//   { dst: "10.244.1.0/26", type: "unicast", nextHops: [ { via: "192.168.0.2", onlink: false } ] } ]
await driver.close();
// README example: end

it("README example programs a blackhole and a flat route", () => {
  expect(routes).toEqual([
    { dst: "10.244.0.0/26", type: "blackhole", nextHops: [] },
    { dst: "10.244.1.0/26", type: "unicast", nextHops: [{ via: "192.168.0.2", onlink: false }] },
  ]);
});
