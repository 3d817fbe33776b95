import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createRecordingLogger } from "@margay/api";
import { createProcessRunner } from "@margay/dataplane";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { autodetectAddresses } from "./autodetect.js";
import { resolveBootstrapConfig } from "./resolve.js";

/**
 * Autodetection against the real kernel: a namespace holding a bridge (created first, so it comes first
 * in kernel order), two veths with addresses and a route through the second one.
 */
const NS = `mgy-ad-${process.pid}-${randomBytes(3).toString("hex")}`;
const ip = (...args: string[]) => execFileSync("ip", ["-n", NS, ...args], { stdio: "pipe" });

const config = (env: Record<string, string>) => resolveBootstrapConfig({ env, hostname: "n1" }).config;
const detect = (env: Record<string, string>) =>
  autodetectAddresses(config(env), {
    runner: createProcessRunner(),
    netns: NS,
    logger: createRecordingLogger(),
  });

describe("autodetectAddresses in a real namespace", () => {
  beforeAll(() => {
    execFileSync("ip", ["netns", "add", NS]);
    try {
      ip("link", "set", "lo", "up");
      ip("link", "add", "br0", "type", "bridge");
      ip("link", "set", "br0", "up");
      ip("addr", "add", "10.60.0.1/24", "dev", "br0");
      ip("link", "add", "eth0", "type", "veth", "peer", "name", "peer0");
      ip("link", "set", "eth0", "mtu", "1400", "up");
      ip("link", "set", "peer0", "up");
      ip("addr", "add", "10.61.0.5/24", "dev", "eth0");
      ip("link", "add", "eth1", "type", "veth", "peer", "name", "peer1");
      ip("link", "set", "eth1", "up");
      ip("link", "set", "peer1", "up");
      ip("addr", "add", "10.62.0.5/24", "dev", "eth1");
      ip("route", "add", "10.99.0.0/16", "via", "10.62.0.1", "dev", "eth1");
    } catch (e) {
      execFileSync("ip", ["netns", "del", NS]);
      throw e;
    }
  });

  afterAll(() => {
    execFileSync("ip", ["netns", "del", NS]);
  });

  it("first-found skips lo and the bridge and takes the first veth with an address, with its MTU", async () => {
    expect(await detect({})).toEqual({
      ipv4: "10.61.0.5/24",
      ipv6: undefined,
      interface: "eth0",
      interfaceMtu: 1400,
    });
  });

  it("interface= picks the bridge when asked, and refuses two matching interfaces", async () => {
    expect(await detect({ IP_AUTODETECTION_METHOD: "interface=br0" })).toMatchObject({
      ipv4: "10.60.0.1/24",
      interface: "br0",
    });
    await expect(detect({ IP_AUTODETECTION_METHOD: "interface=eth.*" })).rejects.toMatchObject({
      code: "ambiguous-address",
      message: expect.stringContaining("eth0 (10.61.0.5/24) and eth1 (10.62.0.5/24)"),
    });
  });

  it("can-reach= follows the kernel's route; an unroutable destination is no-address", async () => {
    expect(await detect({ IP_AUTODETECTION_METHOD: "can-reach=10.99.1.1" })).toMatchObject({
      ipv4: "10.62.0.5/24",
      interface: "eth1",
      interfaceMtu: 1500,
    });
    await expect(detect({ IP_AUTODETECTION_METHOD: "can-reach=192.0.2.1" })).rejects.toMatchObject({
      code: "no-address",
    });
  });

  it("an explicit IP is found on its interface (bare address gets the interface's prefix)", async () => {
    expect(await detect({ IP: "10.62.0.5" })).toMatchObject({ ipv4: "10.62.0.5/24", interface: "eth1" });
  });
});
