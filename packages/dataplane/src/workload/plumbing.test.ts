import { describe, expect, it } from "vitest";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import { namedNetns, pathNetns } from "../kernel/netns.js";
import type { CommandRunner, RunOptions } from "../kernel/runner.js";
import { HOST_VETH_MAC, createWorkloadPlumber } from "./plumbing.js";

interface Call {
  readonly argv: readonly string[];
  readonly stdin: string;
}

const HOST = namedNetns("host");
const POD_MAC = "5a:71:56:d1:0f:72";

/**
 * A kernel stand-in that records every process an `add` would start. `fail(call)` returns a stderr to
 * make that call fail; `links` answers `ip -json link show dev X` for the slow path.
 */
function countingKernel(
  opts: { fail?: (c: Call) => string | undefined; links?: Record<string, object> } = {},
) {
  const calls: Call[] = [];
  const runner: CommandRunner = {
    async run(argv: readonly string[], options: RunOptions = {}) {
      const call = { argv: [...argv], stdin: options.stdin ?? "" };
      calls.push(call);
      const stderr = opts.fail?.(call);
      if (stderr !== undefined) {
        throw new DataplaneError(DataplaneErrorCode.CommandFailed, "command failed", {
          details: { argv: [...argv], stderr },
        });
      }
      if (argv.includes("-batch") && argv.includes("-json") && call.stdin.includes("link show dev")) {
        return { code: 0, stdout: `[{"ifname":"eth0","address":"${POD_MAC}"}]\n`, stderr: "" };
      }
      const dev = argv.indexOf("dev");
      if (argv.includes("show") && dev > 0 && (argv.includes("link") || argv.includes("addr"))) {
        const link = opts.links?.[argv[dev + 1]!];
        if (link === undefined) return { code: 1, stdout: "", stderr: "Device does not exist." };
        return { code: 0, stdout: JSON.stringify([link]), stderr: "" };
      }
      return { code: 0, stdout: "", stderr: "" };
    },
  };
  return { calls, runner };
}

const spec = (addresses: string[], pod = namedNetns("pod")) => ({
  endpoint: { namespace: "default", workload: "a" },
  containerNetns: pod,
  addresses,
  mtu: 1450,
});

describe("workload plumbing: processes per add", () => {
  it("creates a pair in 3 processes (IPv4) and 5 (dual stack), the peer born in the pod's namespace", async () => {
    const v4 = countingKernel();
    const plumber = createWorkloadPlumber({ runner: v4.runner, hostNetns: HOST });
    const r = await plumber.add(spec(["10.0.0.2/32"], pathNetns("/proc/123/ns/net")));
    expect(r.containerMac).toBe(POD_MAC);
    expect(v4.calls).toHaveLength(3);
    const create = v4.calls[0]!;
    expect(create.argv).toEqual(["ip", "-n", "host", "-batch", "-"]);
    expect(create.stdin.split("\n")[0]).toBe(
      `link add ${r.hostIfName} mtu 1450 address ${HOST_VETH_MAC} type veth peer name eth0 mtu 1450 netns /proc/123/ns/net`,
    );
    // No namespace move anywhere: the peer never passes through the host namespace.
    for (const c of v4.calls) expect(`${c.argv.join(" ")}\n${c.stdin}`).not.toMatch(/set (dev )?\S+ netns/);

    const dual = countingKernel();
    await createWorkloadPlumber({ runner: dual.runner, hostNetns: HOST }).add(
      spec(["10.0.0.2/32", "fd00::2/128"]),
    );
    expect(dual.calls).toHaveLength(5);
  });

  it("falls back to inspecting and repairing when the pair already exists", async () => {
    const plumber0 = createWorkloadPlumber({ runner: countingKernel().runner, hostNetns: HOST });
    const host = plumber0.hostIfName({ namespace: "default", workload: "a" });
    const k = countingKernel({
      fail: (c) => (c.stdin.startsWith("link add") ? "RTNETLINK answers: File exists" : undefined),
      links: {
        [host]: { ifname: host, ifindex: 7, link_index: 2 },
        eth0: { ifname: "eth0", ifindex: 2, link_index: 7, address: POD_MAC },
      },
    });
    const r = await createWorkloadPlumber({ runner: k.runner, hostNetns: HOST }).add(spec(["10.0.0.2/32"]));
    expect(r.containerMac).toBe(POD_MAC);
    // The repair re-asserts the host end's MAC, MTU and state and reads the pod's addresses first.
    expect(
      k.calls.some((c) => c.stdin.includes(`link set dev ${host} address ${HOST_VETH_MAC} mtu 1450 up`)),
    ).toBe(true);
    expect(k.calls.some((c) => c.argv.includes("addr") && c.argv.includes("show"))).toBe(true);
    expect(k.calls.some((c) => c.argv.includes("del"))).toBe(false);
    // The failed create, the host end, the pod end with its addresses (one read), sysctls, two batches.
    expect(k.calls).toHaveLength(6);
  });

  it("rebuilds a half-made pair (host end whose peer is elsewhere) with the host end up", async () => {
    const host = createWorkloadPlumber({ runner: countingKernel().runner, hostNetns: HOST }).hostIfName({
      namespace: "default",
      workload: "a",
    });
    let attempts = 0;
    const k = countingKernel({
      fail: (c) =>
        c.stdin.startsWith("link add") && attempts++ === 0 ? "RTNETLINK answers: File exists" : undefined,
      links: { [host]: { ifname: host, ifindex: 7, link_index: 9 } },
    });
    await createWorkloadPlumber({ runner: k.runner, hostNetns: HOST }).add(spec(["10.0.0.2/32"]));
    expect(k.calls.some((c) => c.argv.join(" ") === `ip -n host link del ${host}`)).toBe(true);
    const creates = k.calls.filter((c) => c.stdin.startsWith("link add"));
    expect(creates).toHaveLength(2);
    expect(creates[1]!.stdin).toContain(`link set dev ${host} up`);
  });

  it("an existing container interface that is not the peer is an error, and nothing is created", async () => {
    const k = countingKernel({
      fail: (c) => (c.stdin.startsWith("link add") ? "RTNETLINK answers: File exists" : undefined),
      links: { eth0: { ifname: "eth0", ifindex: 2 } },
    });
    await expect(
      createWorkloadPlumber({ runner: k.runner, hostNetns: HOST }).add(spec(["10.0.0.2/32"])),
    ).rejects.toMatchObject({ code: "command-failed", message: "container interface already exists" });
    expect(k.calls.filter((c) => c.stdin.startsWith("link add") || c.argv.includes("add"))).toHaveLength(1);
  });

  it("removes a pair it made when a later step fails, so a failed add leaves nothing behind", async () => {
    const k = countingKernel({
      fail: (c) =>
        c.argv.includes("-json") && c.argv.includes("-batch")
          ? "Error: Nexthop has invalid gateway."
          : undefined,
    });
    const plumber = createWorkloadPlumber({ runner: k.runner, hostNetns: HOST });
    await expect(plumber.add(spec(["10.0.0.2/32"]))).rejects.toMatchObject({ code: "command-failed" });
    const host = plumber.hostIfName({ namespace: "default", workload: "a" });
    expect(k.calls.at(-1)!.argv).toEqual(["ip", "-n", "host", "link", "del", host]);
  });

  it("rejects a netns reference that could not go into a batch line before touching the kernel", async () => {
    const k = countingKernel();
    await expect(
      createWorkloadPlumber({ runner: k.runner, hostNetns: HOST }).add(
        spec(["10.0.0.2/32"], { kind: "path", path: "/run/netns/x\nlink del lo" }),
      ),
    ).rejects.toMatchObject({ code: "invalid-name" });
    expect(k.calls).toHaveLength(0);
  });
});
