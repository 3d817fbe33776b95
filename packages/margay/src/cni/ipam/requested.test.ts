import { isCniError } from "@margay/cni";
import { describe, expect, it } from "vitest";
import { parseIpamConfig } from "./config.js";
import { requestedAllocation } from "./requested.js";

const conf = {
  cniVersion: "1.1.0",
  name: "net1",
  type: "bridge",
  ipam: {
    type: "margay-ipam",
    datastore: { type: "memory", snapshotPath: "/var/lib/margay/ipam.json" },
    pools: [
      { name: "a", cidr: "10.250.0.0/24" },
      { name: "b", cidr: "10.251.0.0/24" },
      { name: "v6", cidr: "fd00:250::/64" },
    ],
  },
};
const config = parseIpamConfig(conf, "h");

function codeOf(f: () => unknown): { code: number; msg: string } {
  try {
    f();
  } catch (e) {
    if (isCniError(e)) return { code: e.cniCode, msg: e.message };
    throw e;
  }
  throw new Error("expected an error");
}

describe("requestedAllocation", () => {
  it("collects IP=, runtimeConfig.ips and args.cni.ips, one per family, resolved to their pools", () => {
    const r = requestedAllocation(
      config,
      { runtimeConfig: { ips: ["fd00:250::0:10/64"] }, args: { cni: { ips: ["10.251.0.9"] } } },
      { IP: "10.251.0.9" },
    );
    expect(r.ips.map((x) => [x.ip, x.pool.name])).toEqual([
      ["10.251.0.9", "b"],
      ["fd00:250::10", "v6"],
    ]);
    expect(r.pools).toEqual([]);
  });
  it("collects requested pools by name or CIDR (args.cni.pools, ipRanges)", () => {
    const r = requestedAllocation(
      config,
      { args: { cni: { pools: ["b"] } }, runtimeConfig: { ipRanges: [[{ subnet: "fd00:250::/64" }]] } },
      {},
    );
    expect(r.pools.map((p) => p.name)).toEqual(["b", "v6"]);
  });
  const bad: Array<[string, Record<string, unknown>, Record<string, string>, number, RegExp]> = [
    ["malformed IP=", {}, { IP: "10.250.0" }, 4, /^CNI_ARGS IP: not an IP address/],
    ["two addresses of one family", {}, { IP: "10.250.0.5,10.251.0.5" }, 7, /one address per family/],
    ["an address outside the pools", {}, { IP: "192.0.2.1" }, 140, /not in a pool of network net1/],
    ["the gateway", {}, { IP: "10.250.0.1" }, 140, /reserved/],
    ["the broadcast address", { runtimeConfig: { ips: ["10.250.0.255"] } }, {}, 140, /reserved/],
    ["a prefix other than the pool's", { runtimeConfig: { ips: ["10.250.0.7/16"] } }, {}, 7, /prefix/],
    [
      "ips not an array",
      { runtimeConfig: { ips: "10.250.0.7" } },
      {},
      7,
      /^\$\.runtimeConfig\.ips: must be an array/,
    ],
    [
      "an unknown pool",
      { args: { cni: { pools: ["zzz"] } } },
      {},
      7,
      /^\$\.args\.cni\.pools\[0\]: pool "zzz"/,
    ],
    [
      "a range with rangeStart",
      { runtimeConfig: { ipRanges: [[{ subnet: "10.250.0.0/24", rangeStart: "10.250.0.10" }]] } },
      {},
      7,
      /rangeStart: not supported/,
    ],
  ];
  for (const [what, c, args, code, msg] of bad) {
    it(`${what} → code ${code}`, () => {
      const e = codeOf(() => requestedAllocation(config, c, args));
      expect(e.code).toBe(code);
      expect(e.msg).toMatch(msg);
    });
  }
});
