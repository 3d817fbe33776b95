import { readFileSync } from "node:fs";
import { createRecordingLogger } from "@margay/api";
import type { CommandRunner } from "@margay/dataplane";
import { describe, expect, it } from "vitest";
import { autodetectAddresses, parseIpAddrJson } from "./autodetect.js";
import { isAgentConfigError } from "./errors.js";
import { resolveBootstrapConfig } from "./resolve.js";

const data = (f: string) => readFileSync(new URL(`./testdata/${f}`, import.meta.url), "utf8");
const ADDR = data("ip-addr.json");
const ROUTES: Record<string, string> = {
  "8.8.8.8": data("route-get-8.8.8.8.json"),
  "10.0.0.99": data("route-get-10.0.0.99.json"),
  "fd00:1::99": data("route-get-fd00-1--99.json"),
  // Synthetic (not recorded): a route leaving by eth1 with a source address held by eth0.
  "10.7.7.7":
    '[{"dst":"10.7.7.7","gateway":"10.1.0.1","dev":"eth1","prefsrc":"10.0.0.5","flags":[],"uid":0,"cache":[]}]',
};

/** Replays the recorded `ip -j` output; records every argv. */
function fakeRunner(addr = ADDR) {
  const calls: string[][] = [];
  const runner: CommandRunner = {
    async run(argv) {
      calls.push([...argv]);
      const args = argv.slice(argv[1] === "-n" ? 3 : 1);
      if (args.join(" ") === "-j -d addr show") return { code: 0, stdout: addr, stderr: "" };
      if (args[1] === "route" && args[2] === "get") {
        const out = ROUTES[args[3]!];
        if (out === undefined) throw new Error("RTNETLINK answers: Network is unreachable");
        return { code: 0, stdout: out, stderr: "" };
      }
      throw new Error(`unexpected command ${argv.join(" ")}`);
    },
  };
  return { runner, calls };
}

const config = (env: Record<string, string>) => resolveBootstrapConfig({ env, hostname: "node1" }).config;

async function detect(env: Record<string, string>, addr?: string) {
  const { runner, calls } = fakeRunner(addr);
  const logger = createRecordingLogger();
  const result = await autodetectAddresses(config(env), { runner, logger });
  return { result, calls, logger };
}

async function failure(env: Record<string, string>) {
  const { runner } = fakeRunner();
  try {
    await autodetectAddresses(config(env), { runner });
  } catch (e) {
    if (isAgentConfigError(e)) return e;
    throw e;
  }
  throw new Error("expected an AgentConfigError");
}

describe("parseIpAddrJson", () => {
  it("reads names, kinds, MTU, state and addresses of the recorded host", () => {
    const ifaces = parseIpAddrJson(ADDR);
    const eth0 = ifaces.find((i) => i.name === "eth0")!;
    expect(eth0).toMatchObject({ kind: "veth", mtu: 9000, up: true });
    expect(
      eth0.addresses.filter((a) => a.scope === "global").map((a) => `${a.address}/${a.prefixLength}`),
    ).toEqual(["10.0.0.5/24", "10.0.0.6/24", "fd00:1::5/64"]);
    expect(ifaces.find((i) => i.name === "eth2")!.up).toBe(false);
    expect(ifaces.find((i) => i.name === "br0")!.kind).toBe("bridge");
  });
});

describe("autodetectAddresses", () => {
  it("first-found: skips lo, interfaces without a v4 address, and chooses eth0's primary address", async () => {
    const { result, calls, logger } = await detect({});
    expect(result).toEqual({ ipv4: "10.0.0.5/24", ipv6: undefined, interface: "eth0", interfaceMtu: 9000 });
    expect(calls).toEqual([["ip", "-j", "-d", "addr", "show"]]);
    const lines = logger.find({ message: "address candidate" }).map((r) => r.attributes);
    expect(lines.find((l) => l.interface === "lo")).toMatchObject({
      chosen: false,
      reason: expect.stringContaining("lo"),
    });
    expect(lines.find((l) => l.interface === "eth0")).toMatchObject({ chosen: true, address: "10.0.0.5/24" });
    expect(lines.find((l) => l.interface === "eth1")).toMatchObject({
      chosen: false,
      reason: "a previous interface was chosen",
    });
  });

  it("first-found logs why each skipped device was skipped (bridge, docker, workload prefix, vxlan, down)", async () => {
    const { runner } = fakeRunner();
    const logger = createRecordingLogger();
    await expect(
      autodetectAddresses(config({ IP_AUTODETECTION_METHOD: "skip-interface=eth0,eth1" }), {
        runner,
        logger,
      }),
    ).rejects.toMatchObject({ code: "no-address" });
    const why = Object.fromEntries(
      logger.find({ message: "address candidate" }).map((r) => [r.attributes.interface, r.attributes.reason]),
    );
    expect(why.eth0).toBe("skipped by skip-interface=eth0");
    expect(why.eth2).toBe("interface is down");
    expect(why.docker0).toMatch(/default \(name matches docker/);
    expect(why.br0).toBe("skipped by default (bridge device)");
    expect(why.mgy0123456789a).toMatch(/default \(name matches mgy/);
    expect(why["vxlan.margay"]).toMatch(/default/);
  });

  it("skip-interface=: every usable interface skipped is no address (typed error, retryable)", async () => {
    const e = await failure({ IP_AUTODETECTION_METHOD: "skip-interface=eth0,eth1" });
    expect(e.code).toBe("no-address");
    expect(e.retryable).toBe(true);
    expect(e.details.field).toBe("ipAutodetectionMethod");
  });

  it("skip-interface=eth0 chooses eth1", async () => {
    const { result } = await detect({ IP_AUTODETECTION_METHOD: "skip-interface=eth0" });
    expect(result).toMatchObject({ ipv4: "10.1.0.5/24", interface: "eth1", interfaceMtu: 1500 });
  });

  it("a custom workload prefix is skipped like mgy (no address left)", async () => {
    const e = await failure({ MARGAY_INTERFACE_PREFIX: "eth" });
    expect(e.code).toBe("no-address");
  });

  it("interface=: whole-name match; a bridge may be chosen explicitly", async () => {
    expect((await detect({ IP_AUTODETECTION_METHOD: "interface=eth1" })).result).toMatchObject({
      ipv4: "10.1.0.5/24",
      interface: "eth1",
    });
    expect((await detect({ IP_AUTODETECTION_METHOD: "interface=br0" })).result).toMatchObject({
      ipv4: "10.9.0.1/24",
      interface: "br0",
    });
    // "eth" alone matches no whole name.
    expect((await failure({ IP_AUTODETECTION_METHOD: "interface=eth" })).code).toBe("no-address");
  });

  it("interface=: the first pattern that matches wins (priority list for mixed fleets)", async () => {
    const { result } = await detect({ IP_AUTODETECTION_METHOD: "interface=ens.*,eth1,eth0" });
    expect(result.interface).toBe("eth1");
  });

  it("interface=: two interfaces with addresses matching one pattern is refused, naming both", async () => {
    const e = await failure({ IP_AUTODETECTION_METHOD: "interface=eth[01]" });
    expect(e.code).toBe("ambiguous-address");
    expect(e.message).toContain("eth0 (10.0.0.5/24) and eth1 (10.1.0.5/24)");
    expect(e.details.candidates).toEqual([
      { interface: "eth0", address: "10.0.0.5/24" },
      { interface: "eth1", address: "10.1.0.5/24" },
    ]);
    expect(e.retryable).toBe(false);
  });

  it("interface=: a matching interface without a v4 address does not make it ambiguous", async () => {
    const { result } = await detect({ IP_AUTODETECTION_METHOD: "interface=eth1|peer1" });
    expect(result.interface).toBe("eth1");
  });

  it("cidr=: the address inside the range; two interfaces inside is refused", async () => {
    expect((await detect({ IP_AUTODETECTION_METHOD: "cidr=10.1.0.0/16" })).result).toMatchObject({
      ipv4: "10.1.0.5/24",
      interface: "eth1",
    });
    const e = await failure({ IP_AUTODETECTION_METHOD: "cidr=10.0.0.0/14" });
    expect(e.code).toBe("ambiguous-address");
    expect(e.message).toMatch(/eth0 .* and eth1/);
    expect((await failure({ IP_AUTODETECTION_METHOD: "cidr=10.200.0.0/16" })).code).toBe("no-address");
  });

  it("cidr=: the first CIDR with a match wins; two addresses on one interface take the first", async () => {
    const { result } = await detect({ IP_AUTODETECTION_METHOD: "cidr=10.200.0.0/16,10.0.0.0/24" });
    expect(result).toMatchObject({ ipv4: "10.0.0.5/24", interface: "eth0" });
  });

  it("can-reach=: the source address of the kernel's route (ip -j route get)", async () => {
    const { result, calls } = await detect({ IP_AUTODETECTION_METHOD: "can-reach=8.8.8.8" });
    expect(result).toMatchObject({ ipv4: "10.1.0.5/24", interface: "eth1" });
    expect(calls[1]).toEqual(["ip", "-j", "route", "get", "8.8.8.8"]);
    expect((await detect({ IP_AUTODETECTION_METHOD: "can-reach=10.0.0.99" })).result.interface).toBe("eth0");
  });

  it("can-reach=: a host name is resolved first; an unreachable destination is no-address", async () => {
    const { runner, calls } = fakeRunner();
    const result = await autodetectAddresses(config({ IP_AUTODETECTION_METHOD: "can-reach=dns.example" }), {
      runner,
      lookup: async (host, family) => {
        expect([host, family]).toEqual(["dns.example", 4]);
        return "8.8.8.8";
      },
    });
    expect(result.interface).toBe("eth1");
    expect(calls[1]).toEqual(["ip", "-j", "route", "get", "8.8.8.8"]);
    const e = await failure({ IP_AUTODETECTION_METHOD: "can-reach=192.0.2.1" });
    expect(e.code).toBe("no-address");
    expect(e.message).toContain("Network is unreachable");
  });

  it("can-reach=: a source address held by another interface than the route's reports that interface", async () => {
    const { result } = await detect({ IP_AUTODETECTION_METHOD: "can-reach=10.7.7.7" });
    expect(result).toMatchObject({ ipv4: "10.0.0.5/24", interface: "eth0", interfaceMtu: 9000 });
  });

  it("every method logs every interface as a candidate, chosen or not", async () => {
    const names = parseIpAddrJson(ADDR).map((i) => i.name);
    for (const method of ["first-found", "skip-interface=eth0", "interface=eth1", "cidr=10.1.0.0/16"]) {
      const { logger } = await detect({ IP_AUTODETECTION_METHOD: method });
      const logged = logger.find({ message: "address candidate" }).map((r) => r.attributes.interface);
      expect(new Set(logged), method).toEqual(new Set(names));
      expect(logger.find({ message: "address candidate" }).filter((r) => r.attributes.chosen)).toHaveLength(
        1,
      );
    }
  });

  it("IPv6: can-reach= and first-found, interface reported for IPv4 first", async () => {
    const { result } = await detect({ IP6: "autodetect", IP6_AUTODETECTION_METHOD: "can-reach=fd00:1::99" });
    expect(result).toMatchObject({ ipv4: "10.0.0.5/24", ipv6: "fd00:1::5/64", interface: "eth0" });
    const v6only = await detect({
      IP: "none",
      IP6: "autodetect",
      IP6_AUTODETECTION_METHOD: "interface=eth1",
    });
    expect(v6only.result).toEqual({
      ipv4: undefined,
      ipv6: "fd00:2::5/64",
      interface: "eth1",
      interfaceMtu: 1500,
    });
  });

  it("an explicit IP is validated: found (bare address takes the interface's prefix) or warned", async () => {
    const bare = await detect({ IP: "10.1.0.5" });
    expect(bare.result).toMatchObject({ ipv4: "10.1.0.5/24", interface: "eth1", interfaceMtu: 1500 });
    expect(bare.logger.find({ level: "warn" })).toEqual([]);
    const missing = await detect({ IP: "10.44.0.5/24" });
    expect(missing.result).toEqual({
      ipv4: "10.44.0.5/24",
      ipv6: undefined,
      interface: undefined,
      interfaceMtu: undefined,
    });
    expect(missing.logger.find({ level: "warn" })[0]).toMatchObject({
      message: "configured address not found on any interface",
      attributes: { address: "10.44.0.5/24" },
    });
    const prefix = await detect({ IP: "10.0.0.6/16" });
    expect(prefix.result.ipv4).toBe("10.0.0.6/16");
    expect(prefix.logger.find({ level: "warn" })[0]!.message).toBe(
      "configured address prefix differs from the interface's",
    );
  });

  it("netns: every ip call names the namespace", async () => {
    const { runner, calls } = fakeRunner();
    await autodetectAddresses(config({ IP_AUTODETECTION_METHOD: "can-reach=8.8.8.8" }), {
      runner,
      netns: "host1",
    });
    expect(calls).toEqual([
      ["ip", "-n", "host1", "-j", "-d", "addr", "show"],
      ["ip", "-n", "host1", "-j", "route", "get", "8.8.8.8"],
    ]);
  });

  it("ip failing or printing garbage is host-query-failed (retryable)", async () => {
    const broken: CommandRunner = { run: async () => ({ code: 0, stdout: "not json", stderr: "" }) };
    await expect(autodetectAddresses(config({}), { runner: broken })).rejects.toMatchObject({
      code: "host-query-failed",
      retryable: true,
    });
    const failing: CommandRunner = {
      run: async () => {
        throw new Error("spawn ip ENOENT");
      },
    };
    await expect(autodetectAddresses(config({}), { runner: failing })).rejects.toMatchObject({
      code: "host-query-failed",
      message: expect.stringContaining("ENOENT"),
    });
  });
});
