import { describe, expect, it } from "vitest";
import { CURRENT_NETNS, namedNetns } from "../kernel/netns.js";
import type { CommandRunner, RunOptions } from "../kernel/runner.js";
import { createLinuxDataplane } from "./linux-driver.js";
import { linkNames, parseProcNetDev } from "./link-names.js";

const PROC_NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1234      10    0    0    0     0          0         0     1234      10    0    0    0     0       0          0
  eth0: 99 1 0 0 0 0 0 0 99 1 0 0 0 0 0 0
mgyab12cd34ef5: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
`;

function recorder(listing = "[]") {
  const calls: (readonly string[])[] = [];
  const runner: CommandRunner = {
    async run(argv: readonly string[], _options: RunOptions = {}) {
      calls.push(argv);
      return { code: 0, stdout: argv.includes("-json") ? listing : "", stderr: "" };
    },
  };
  return { calls, runner };
}

describe("linkNames", () => {
  it("parses /proc/net/dev (headers skipped, names trimmed)", () => {
    expect(parseProcNetDev(PROC_NET_DEV)).toEqual(["lo", "eth0", "mgyab12cd34ef5"]);
    expect(parseProcNetDev("")).toEqual([]);
  });

  it("reads the process's own namespace without starting a process", async () => {
    const { calls, runner } = recorder();
    expect(await linkNames(runner, CURRENT_NETNS, { readProcNetDev: async () => PROC_NET_DEV })).toEqual([
      "lo",
      "eth0",
      "mgyab12cd34ef5",
    ]);
    // The real file of this process's namespace has its loopback.
    expect(await linkNames(runner, CURRENT_NETNS)).toContain("lo");
    expect(calls).toEqual([]);
  });

  it("asks ip for another namespace", async () => {
    const { calls, runner } = recorder('[{"ifname":"lo"},{"ifname":"mgyx"}]');
    expect(await linkNames(runner, namedNetns("x"))).toEqual(["lo", "mgyx"]);
    expect(calls).toEqual([["ip", "-n", "x", "-json", "link", "show"]]);
  });

  it("an endpoint removal in the driver's own namespace starts no 'ip link show'", async () => {
    const { calls, runner } = recorder();
    const d = createLinuxDataplane({ netns: CURRENT_NETNS, nodeName: "a", runner, reconcileIntervalMs: 0 });
    await d.apply([
      { kind: "host-update", node: "a", addresses: ["192.168.0.1/24"] },
      {
        kind: "workload-endpoint-update",
        id: "ns/w",
        ifname: "mgyw0",
        ipNetworks: ["10.0.0.5/32"],
        tiers: { ingress: [], egress: [] },
        profileIds: [],
      },
      { kind: "in-sync" },
    ]);
    await d.apply([{ kind: "workload-endpoint-remove", id: "ns/w" }]);
    expect(calls.filter((argv) => argv.includes("link") && argv.includes("show"))).toEqual([]);
    await d.close();
  });
});
