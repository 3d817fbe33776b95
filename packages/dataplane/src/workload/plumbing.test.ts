import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import { CURRENT_NETNS, namedNetns, pathNetns } from "../kernel/netns.js";
import type { CommandRunner, RunOptions, RunningCommand } from "../kernel/runner.js";
import { HOST_VETH_MAC, createWorkloadPlumber } from "./plumbing.js";

interface Call {
  readonly argv: readonly string[];
  readonly stdin: string;
  /** For a pod batch the helper ran: the namespace and the batch file. */
  readonly podNetns?: string | undefined;
  readonly file?: string | undefined;
}

const HOST = namedNetns("host");
const POD_MAC = "5a:71:56:d1:0f:72";
const EP = { namespace: "default", workload: "a" };

/**
 * A kernel stand-in that records every process an `add` would start. `fail(call)` returns a stderr to
 * make that call fail; `links` answers `ip -json link show dev X` for the slow path. With `helper`, the
 * runner can also keep a process (`start`): an `ip -force -batch -` whose lines are recorded one by one
 * (each as a call with its argv) and answered on stderr as `ip` does, so `starts` counts those processes.
 */
function countingKernel(
  opts: {
    fail?: (c: Call) => string | undefined;
    links?: Record<string, object>;
    helper?: boolean;
    /** How long a helper takes over a pod batch (`netns exec`). */
    podBatchMs?: number;
  } = {},
) {
  const calls: Call[] = [];
  const starts: { argv: readonly string[]; killed: boolean }[] = [];
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
      const dev = argv.indexOf("dev");
      if (argv.includes("show") && dev > 0 && (argv.includes("link") || argv.includes("addr"))) {
        const link = opts.links?.[argv[dev + 1]!];
        if (link === undefined) return { code: 1, stdout: "", stderr: "Device does not exist." };
        return { code: 0, stdout: JSON.stringify([link]), stderr: "" };
      }
      return { code: 0, stdout: "", stderr: "" };
    },
  };
  if (opts.helper === true) {
    runner.start = (argv): RunningCommand => {
      const me = { argv: [...argv], killed: false };
      starts.push(me);
      const err: ((chunk: string) => void)[] = [];
      const exits: ((code: number | null) => void)[] = [];
      let lineNo = 0;
      // Replies in order, a pod batch taking `podBatchMs` (a helper is one process: one line at a time).
      let ready = Date.now();
      const say = (text: string, ms = 0) => {
        ready = Math.max(ready, Date.now()) + ms;
        setTimeout(() => {
          if (!me.killed) for (const l of err) l(text);
        }, ready - Date.now());
      };
      return {
        write(text) {
          for (const line of text.split("\n").slice(0, -1)) {
            lineNo++;
            if (line === "margay-batch-end") {
              say(`Object "${line}" is unknown, try "ip help".\nCommand failed -:${lineNo}\n`);
              continue;
            }
            // A pod batch run by the helper (`netns exec NS ip -force -batch FILE`): its file's lines.
            const exec = /^netns exec (\S+) ip -force -batch (\S+)$/.exec(line);
            const call = exec
              ? { argv: me.argv, stdin: readFileSync(exec[2]!, "utf8"), podNetns: exec[1], file: exec[2] }
              : { argv: me.argv, stdin: `${line}\n` };
            calls.push(call);
            const stderr = opts.fail?.(call);
            if (stderr !== undefined) say(`${stderr}\nCommand failed -:${lineNo}\n`);
            else if (exec) say("", opts.podBatchMs ?? 0);
          }
        },
        onStderr: (l) => void err.push(l),
        onExit: (l) => void exits.push(l),
        kill() {
          me.killed = true;
          for (const l of exits) l(null);
        },
        hold() {},
      };
    };
  }
  /** Processes started: one-shot runs, plus helpers kept. */
  const processes = () => calls.filter((c) => !starts.some((s) => s.argv === c.argv)).length + starts.length;
  return { calls, starts, runner, processes };
}

const spec = (addresses: string[], pod = namedNetns("pod")) => ({
  endpoint: EP,
  containerNetns: pod,
  addresses,
  mtu: 1450,
});

/** A /proc/sys stand-in for plumbers whose host namespace is the current one. */
function procSys(opts: { fail?: string; defaults?: Record<string, string> } = {}) {
  const written = new Map<string, string>();
  return {
    written,
    read: async (key: string) => {
      const v = opts.defaults?.[key];
      if (v === undefined) throw Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT" });
      return v;
    },
    write: async (key: string, value: string) => {
      if (key === opts.fail) throw Object.assign(new Error("ENOENT: no such file"), { code: "ENOENT" });
      written.set(key, value);
    },
  };
}

describe("workload plumbing: processes per add and del", () => {
  it("creates a pair in 3 processes (IPv4) and 5 (dual stack), the peer born in the pod's namespace", async () => {
    const v4 = countingKernel();
    const plumber = createWorkloadPlumber({ runner: v4.runner, hostNetns: HOST });
    const r = await plumber.add(spec(["10.0.0.2/32"], pathNetns("/proc/123/ns/net")));
    expect(v4.calls).toHaveLength(3);
    const create = v4.calls[0]!;
    expect(create.argv).toEqual(["ip", "-n", "host", "-force", "-batch", "-"]);
    expect(create.stdin).toBe(
      `link add ${r.hostIfName} mtu 1450 address ${HOST_VETH_MAC} up type veth peer name eth0 address ${r.containerMac} mtu 1450 netns /proc/123/ns/net\n`,
    );
    // The MAC is the one the pair was made with (random, unicast, locally administered): nothing reads it.
    expect(r.containerMac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(Number.parseInt(r.containerMac.slice(0, 2), 16) & 3).toBe(2);
    for (const c of v4.calls) expect(`${c.argv.join(" ")}\n${c.stdin}`).not.toMatch(/link show|-json/);
    // No namespace move anywhere: the peer never passes through the host namespace.
    for (const c of v4.calls) expect(`${c.argv.join(" ")}\n${c.stdin}`).not.toMatch(/set (dev )?\S+ netns/);

    const dual = countingKernel();
    await createWorkloadPlumber({ runner: dual.runner, hostNetns: HOST }).add(
      spec(["10.0.0.2/32", "fd00::2/128"]),
    );
    expect(dual.calls).toHaveLength(5);
  });

  it("with the host namespace its own: one process per IPv4 add (the pod's side), none per del, host sysctls written to /proc/sys", async () => {
    const k = countingKernel({ helper: true });
    const sys = procSys();
    const plumber = createWorkloadPlumber({
      runner: k.runner,
      hostNetns: CURRENT_NETNS,
      procSys: sys,
    });
    const hosts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await plumber.add({
        ...spec(["10.0.0.2/32"], pathNetns(`/run/netns/p${i}`)),
        endpoint: { namespace: "default", workload: `w${i}` },
      });
      hosts.push(r.hostIfName);
    }
    // One `ip` helper for the host's lines of all three adds, one container-side process per add.
    expect(k.starts).toHaveLength(1);
    expect(k.starts[0]!.argv).toEqual(["ip", "-force", "-batch", "-"]);
    expect(k.processes()).toBe(4);
    expect(k.calls.filter((c) => c.argv[0] === "sysctl" || c.argv.includes("sysctl"))).toHaveLength(0);
    expect(sys.written.get(`net/ipv4/conf/${hosts[0]}/proxy_arp`)).toBe("1");
    expect(sys.written.get(`net/ipv4/neigh/${hosts[0]}/proxy_delay`)).toBe("0");
    expect(sys.written.get(`net/ipv4/conf/${hosts[2]}/rp_filter`)).toBe("0");

    // Del: one line to the helper, no read first.
    const before = k.processes();
    for (let i = 0; i < 3; i++) await plumber.remove({ namespace: "default", workload: `w${i}` });
    expect(k.processes()).toBe(before);
    expect(k.calls.slice(-3).map((c) => c.stdin)).toEqual(hosts.map((h) => `link del dev ${h}\n`));
    plumber.close?.();
    expect(k.starts[0]!.killed).toBe(true);
  });

  it("a named pod namespace: no process per add at all, the pod's batch runs through a second helper", async () => {
    const k = countingKernel({ helper: true });
    const scratchDir = mkdtempSync(join(tmpdir(), "mgy-plumb-test-"));
    const plumber = createWorkloadPlumber({
      runner: k.runner,
      hostNetns: CURRENT_NETNS,
      procSys: procSys(),
      scratchDir,
    });
    for (let i = 0; i < 3; i++)
      await plumber.add({
        ...spec(["10.0.0.2/32"], namedNetns(`p${i}`)),
        endpoint: { namespace: "default", workload: `w${i}` },
      });
    // Two kept helpers (host lines; pod batches), nothing started per add.
    expect(k.starts.map((s) => s.argv)).toEqual([
      ["ip", "-force", "-batch", "-"],
      ["ip", "-force", "-batch", "-"],
    ]);
    expect(k.processes()).toBe(2);
    const pod = k.calls.filter((c) => c.podNetns !== undefined);
    expect(pod.map((c) => c.podNetns)).toEqual(["p0", "p1", "p2"]);
    expect(pod[0]!.stdin).toContain("addr add 10.0.0.2/32 dev eth0 nodad\n");
    expect(pod[0]!.stdin).toContain("route replace 0.0.0.0/0 via 169.254.1.1 dev eth0\n");
    // Each batch file goes once run.
    await new Promise((r) => setTimeout(r, 50));
    for (const c of pod) expect(c.file!.startsWith(`${scratchDir}/margay-plumb-`)).toBe(true);
    for (const c of pod) expect(existsSync(c.file!)).toBe(false);
    expect(readdirSync(scratchDir)).toEqual([]);
    rmSync(scratchDir, { recursive: true });
    plumber.close?.();
  });

  it("a burst's pod batches spread over up to four helpers instead of one queue", async () => {
    const k = countingKernel({ helper: true, podBatchMs: 30 });
    const plumber = createWorkloadPlumber({ runner: k.runner, hostNetns: CURRENT_NETNS, procSys: procSys() });
    await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        plumber.add({
          ...spec(["10.0.0.2/32"], namedNetns(`p${i}`)),
          endpoint: { namespace: "default", workload: `w${i}` },
        }),
      ),
    );
    // The veth helper and four pod helpers; nothing started per add.
    expect(k.starts).toHaveLength(5);
    expect(k.processes()).toBe(5);
    plumber.close?.();
    for (const s of k.starts) expect(s.killed).toBe(true);
  });

  it("leaves a fresh veth's forwarding alone on a forwarding host (the write would wait on the rtnl lock)", async () => {
    for (const dflt of ["1\n", "0\n"]) {
      const k = countingKernel({ helper: true });
      const sys = procSys({
        defaults: { "net/ipv4/conf/default/forwarding": dflt, "net/ipv6/conf/default/forwarding": dflt },
      });
      const plumber = createWorkloadPlumber({ runner: k.runner, hostNetns: CURRENT_NETNS, procSys: sys });
      const r = await plumber.add(spec(["10.0.0.2/32", "fd00::2/128"]));
      const forwarding = [...sys.written.keys()].filter((key) => key.endsWith("/forwarding"));
      expect(forwarding).toEqual(
        dflt === "1\n"
          ? []
          : [`net/ipv4/conf/${r.hostIfName}/forwarding`, `net/ipv6/conf/${r.hostIfName}/forwarding`],
      );
      // Settings that do not take the lock are written either way.
      expect(sys.written.get(`net/ipv4/conf/${r.hostIfName}/proxy_arp`)).toBe("1");
      plumber.close?.();
    }
  });

  it("without a helper process a del is one `ip link del`, and a missing device is done", async () => {
    const k = countingKernel({
      fail: (c) => (c.stdin.startsWith("link del") ? 'Cannot find device "mgyx"' : undefined),
    });
    const plumber = createWorkloadPlumber({ runner: k.runner, hostNetns: HOST });
    await plumber.remove(EP);
    await plumber.remove(EP);
    expect(k.calls).toHaveLength(2);
    expect(k.calls[0]!.stdin).toBe(`link del dev ${plumber.hostIfName(EP)}\n`);
  });

  it("a missing device is done for the helper too; any other del failure is reported", async () => {
    let error = 'Cannot find device "x"';
    const k = countingKernel({
      helper: true,
      fail: (c) => (c.stdin.startsWith("link del") ? error : undefined),
    });
    const plumber = createWorkloadPlumber({ runner: k.runner, hostNetns: HOST });
    await plumber.remove(EP);
    error = "RTNETLINK answers: Operation not permitted";
    await expect(plumber.remove(EP)).rejects.toMatchObject({ code: "command-failed" });
    const k2 = countingKernel({ fail: (c) => (c.stdin.startsWith("link del") ? error : undefined) });
    await expect(
      createWorkloadPlumber({ runner: k2.runner, hostNetns: HOST }).remove(EP),
    ).rejects.toMatchObject({
      code: "command-failed",
    });
    plumber.close?.();
  });

  it("replaces the helper after 8 pairs made into other namespaces (ip keeps each namespace file open)", async () => {
    const k = countingKernel({ helper: true });
    const plumber = createWorkloadPlumber({
      runner: k.runner,
      hostNetns: CURRENT_NETNS,
      procSys: procSys(),
    });
    for (let i = 0; i < 9; i++)
      await plumber.add({
        ...spec(["10.0.0.2/32"], pathNetns(`/run/netns/p${i}`)),
        endpoint: { namespace: "default", workload: `w${i}` },
      });
    expect(k.starts).toHaveLength(2);
    expect(k.starts[0]!.killed).toBe(true);
    expect(k.starts[1]!.killed).toBe(false);
    plumber.close?.();
    expect(k.starts[1]!.killed).toBe(true);
  });

  it("ends an idle helper by itself", async () => {
    const k = countingKernel({ helper: true });
    const plumber = createWorkloadPlumber({ runner: k.runner, hostNetns: HOST });
    await plumber.remove(EP);
    expect(k.starts[0]!.killed).toBe(false);
    await new Promise((r) => setTimeout(r, 1_300));
    expect(k.starts[0]!.killed).toBe(true);
    await plumber.remove(EP);
    expect(k.starts).toHaveLength(2);
    plumber.close?.();
  });

  it("falls back to inspecting and repairing when the pair already exists", async () => {
    const plumber0 = createWorkloadPlumber({ runner: countingKernel().runner, hostNetns: HOST });
    const host = plumber0.hostIfName(EP);
    const k = countingKernel({
      fail: (c) => (c.stdin.startsWith("link add") ? "RTNETLINK answers: File exists" : undefined),
      links: {
        [host]: { ifname: host, ifindex: 7, link_index: 2 },
        eth0: { ifname: "eth0", ifindex: 2, link_index: 7, address: POD_MAC },
      },
    });
    const r = await createWorkloadPlumber({ runner: k.runner, hostNetns: HOST }).add(spec(["10.0.0.2/32"]));
    // The existing pair keeps its MAC (read with its addresses).
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
    const host = createWorkloadPlumber({ runner: countingKernel().runner, hostNetns: HOST }).hostIfName(EP);
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
    expect(creates[1]!.stdin).toContain(`address ${HOST_VETH_MAC} up type veth`);
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
    for (const helper of [false, true]) {
      const k = countingKernel({
        helper,
        fail: (c) => (c.stdin.includes("route replace") ? "Error: Nexthop has invalid gateway." : undefined),
      });
      const plumber = createWorkloadPlumber({ runner: k.runner, hostNetns: HOST });
      await expect(plumber.add(spec(["10.0.0.2/32"]))).rejects.toMatchObject({ code: "command-failed" });
      expect(k.calls.at(-1)!.stdin).toBe(`link del dev ${plumber.hostIfName(EP)}\n`);
      plumber.close?.();
    }
  });

  it("a host sysctl that cannot be written fails the add with a typed error and removes the pair", async () => {
    const k = countingKernel({ helper: true });
    const host = createWorkloadPlumber({ runner: countingKernel().runner, hostNetns: HOST }).hostIfName(EP);
    const plumber = createWorkloadPlumber({
      runner: k.runner,
      hostNetns: CURRENT_NETNS,
      procSys: procSys({ fail: `net/ipv4/conf/${host}/proxy_arp` }),
    });
    await expect(plumber.add(spec(["10.0.0.2/32"]))).rejects.toMatchObject({
      code: "command-failed",
      retryable: true,
      details: { key: `net/ipv4/conf/${host}/proxy_arp`, errno: "ENOENT" },
    });
    expect(k.calls.at(-1)!.stdin).toBe(`link del dev ${host}\n`);
    plumber.close?.();
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
