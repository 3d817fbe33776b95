import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

// README example: start
import { DATAPLANE_DESCRIPTOR, type DataplaneUpdate, RouteType } from "@margay/dataplane-contract";
import protobuf from "protobufjs/light.js";

// A batch as a driver receives it: plain objects, one string-literal `kind` each.
const batch: DataplaneUpdate[] = [
  {
    kind: "pool-update",
    cidr: "10.65.0.0/16",
    encapsulation: "vxlan",
    crossSubnet: false,
    natOutgoing: true,
  },
  { kind: "route-update", dst: "10.65.1.0/26", type: RouteType.LocalBlock },
  { kind: "in-sync" },
];

// The same update on the wire: the populated field of `Update` is the kind (`route-update` → routeUpdate).
const root = protobuf.Root.fromJSON(DATAPLANE_DESCRIPTOR as protobuf.INamespace);
const Update = root.lookupType("margay.dataplane.v1.Update");
const { kind, ...route } = batch[1]!;
const bytes = Update.encode(Update.fromObject({ routeUpdate: route })).finish();
const back = Update.toObject(Update.decode(bytes));
console.log(kind, back.routeUpdate); // route-update { dst: '10.65.1.0/26', type: 'local-block' }
// README example: end

it("runs the README example, and the README shows exactly this code", () => {
  expect(back).toEqual({ routeUpdate: { dst: "10.65.1.0/26", type: "local-block" } });
  const source = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  expect(readme).toContain(code.trim());
});
