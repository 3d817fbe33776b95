import { describe, expect, it } from "vitest";
import { configuredEncapsulations, deriveMtu } from "./mtu.js";
import { resolveBootstrapConfig } from "./resolve.js";

const config = (env: Record<string, string>) => resolveBootstrapConfig({ env, hostname: "n1" }).config;

describe("deriveMtu", () => {
  it("an explicit MTU wins over everything", () => {
    expect(deriveMtu({ mtu: 1300 }, { interfaceMtu: 9000 }, ["vxlan"])).toBe(1300);
  });

  it("underlay MTU minus the largest overhead in use (VXLAN 50, IPIP 20)", () => {
    expect(deriveMtu({ mtu: undefined }, { interfaceMtu: 9000 }, [])).toBe(9000);
    expect(deriveMtu({ mtu: undefined }, { interfaceMtu: 9000 }, ["none"])).toBe(9000);
    expect(deriveMtu({ mtu: undefined }, { interfaceMtu: 9000 }, ["ipip"])).toBe(8980);
    expect(deriveMtu({ mtu: undefined }, { interfaceMtu: 9000 }, ["ipip", "vxlan"])).toBe(8950);
    expect(deriveMtu({ mtu: undefined }, { interfaceMtu: 1500 }, new Set(["vxlan" as const]))).toBe(1450);
  });

  it("an unknown underlay counts as 1500", () => {
    expect(deriveMtu({ mtu: undefined }, { interfaceMtu: undefined }, ["vxlan"])).toBe(1450);
  });

  it("never goes below 576", () => {
    expect(deriveMtu({ mtu: undefined }, { interfaceMtu: 600 }, ["vxlan"])).toBe(576);
  });
});

describe("configuredEncapsulations", () => {
  it("from the backend and the default pools", () => {
    expect(configuredEncapsulations(config({}))).toEqual([]);
    expect(configuredEncapsulations(config({ MARGAY_NETWORKING_BACKEND: "vxlan" }))).toEqual(["vxlan"]);
    expect(configuredEncapsulations(config({ MARGAY_IPV4POOL_IPIP: "CrossSubnet" }))).toEqual(["ipip"]);
    expect(
      configuredEncapsulations(
        config({ MARGAY_IPV4POOL_IPIP: "Always", IP6: "autodetect", MARGAY_IPV6POOL_VXLAN: "Always" }),
      ).sort(),
    ).toEqual(["ipip", "vxlan"]);
  });
});
