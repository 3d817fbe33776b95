import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLinuxDataplane } from "../linux/linux-driver.js";
import { createNetnsLab, type NetnsLab } from "../testing/netns-lab.js";
import { startProbeAgent } from "../testing/probe-agent.js";
import { pathNetns } from "../kernel/netns.js";
import { HOST_VETH_MAC, WORKLOAD_GATEWAY_V6, createWorkloadPlumber, workloadMtu } from "./plumbing.js";

let lab: NetnsLab;
let host: Awaited<ReturnType<NetnsLab["add"]>>;
let podA: Awaited<ReturnType<NetnsLab["add"]>>;
let podB: Awaited<ReturnType<NetnsLab["add"]>>;

const json = async <T>(ns: { kind: "named"; name: string }, ...args: string[]) =>
  JSON.parse(await lab.exec(ns, ["ip", "-json", ...args])) as T;

beforeAll(async () => {
  lab = createNetnsLab("mgdpw");
  host = await lab.add("host");
  podA = await lab.add("a");
  podB = await lab.add("b");
  await lab.sysctl(host, "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
});

afterAll(async () => {
  await lab?.close();
});

describe("workload plumbing", () => {
  const specA = () => ({
    endpoint: { namespace: "default", workload: "a" },
    containerNetns: podA,
    containerIfName: "eth0",
    addresses: ["10.66.0.2/32", "fd66::2/128"],
    mtu: workloadMtu(1500, "vxlan"),
  });

  it("creates the veth pair with a stable name, addresses, gateways, MTU and sysctls", async () => {
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host });
    const r = await plumber.add(specA());
    expect(r.hostIfName).toBe(plumber.hostIfName({ namespace: "default", workload: "a" }));
    expect(r.hostIfName).toMatch(/^mgy[0-9a-f]{12}$/);
    const [hostLink] = await json<{ address: string; mtu: number }[]>(
      host,
      "link",
      "show",
      "dev",
      r.hostIfName,
    );
    expect(hostLink).toMatchObject({ address: HOST_VETH_MAC, mtu: 1450 });
    const [inner] = await json<
      { mtu: number; address: string; flags: string[]; addr_info: { local: string; scope: string }[] }[]
    >(podA, "addr", "show", "dev", "eth0");
    expect(inner!.mtu).toBe(1450);
    // The result's MAC is not read back: it is the one the pair was made with.
    expect(inner!.address).toBe(r.containerMac);
    expect(inner!.flags).toContain("UP");
    expect(inner!.addr_info.filter((a) => a.scope === "global").map((a) => a.local)).toEqual([
      "10.66.0.2",
      "fd66::2",
    ]);
    const [hostAddr] = await json<{ addr_info: { local: string }[] }[]>(
      host,
      "-6",
      "addr",
      "show",
      "dev",
      r.hostIfName,
    );
    expect(hostAddr!.addr_info.map((a) => a.local)).toContain(WORKLOAD_GATEWAY_V6);
    expect(await lab.exec(host, ["sysctl", "-n", `net.ipv4.conf.${r.hostIfName}.proxy_arp`])).toBe("1\n");
    const routes4 = await json<{ dst: string; gateway?: string }[]>(podA, "-4", "route", "show");
    expect(routes4).toContainEqual(expect.objectContaining({ dst: "default", gateway: "169.254.1.1" }));
    const routes6 = await json<{ dst: string; gateway?: string }[]>(podA, "-6", "route", "show", "default");
    expect(routes6[0]?.gateway).toBe(WORKLOAD_GATEWAY_V6);
    expect(await plumber.check(specA())).toEqual([]);
    plumber.close?.();
  });

  it("is idempotent: adding again changes nothing and repairs drift", async () => {
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host });
    const [before] = await json<{ ifindex: number }[]>(
      host,
      "link",
      "show",
      "dev",
      plumber.hostIfName({ namespace: "default", workload: "a" }),
    );
    await lab.exec(podA, ["ip", "addr", "del", "10.66.0.2/32", "dev", "eth0"]);
    expect(await plumber.check(specA())).toEqual(["address 10.66.0.2/32 missing"]);
    await plumber.add(specA());
    const [after] = await json<{ ifindex: number }[]>(
      host,
      "link",
      "show",
      "dev",
      plumber.hostIfName({ namespace: "default", workload: "a" }),
    );
    expect(after!.ifindex).toBe(before!.ifindex);
    expect(await plumber.check(specA())).toEqual([]);
  });

  it("carries IPv4 and IPv6 between two workloads through the 169.254.1.1 and link-local gateways", async () => {
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host });
    const a = await plumber.add(specA());
    const b = await plumber.add({
      endpoint: { namespace: "default", workload: "b" },
      containerNetns: podB,
      addresses: ["10.66.0.3/32", "fd66::3/128"],
      mtu: 1450,
    });
    const driver = createLinuxDataplane({
      netns: host,
      nodeName: "n",
      reconcileIntervalMs: 0,
      nftables: { enabled: false },
    });
    await driver.apply([
      { kind: "route-update", dst: "10.66.0.2/32", type: "local-workload", ifname: a.hostIfName },
      { kind: "route-update", dst: "10.66.0.3/32", type: "local-workload", ifname: b.hostIfName },
      { kind: "route-update", dst: "fd66::2/128", type: "local-workload", ifname: a.hostIfName },
      { kind: "route-update", dst: "fd66::3/128", type: "local-workload", ifname: b.hostIfName },
      { kind: "in-sync" },
    ]);
    const agentA = await startProbeAgent(podA, { tcp: [7000] });
    const agentB = await startProbeAgent(podB, { tcp: [7000], udp: [7001] });
    try {
      expect(await agentA.probe("tcp", "10.66.0.3", 7000, 2000)).toBe(true);
      expect(await agentA.probe("udp", "10.66.0.3", 7001, 2000)).toBe(true);
      expect(await agentA.probe("tcp", "fd66::3", 7000, 3000)).toBe(true);
      expect(await agentA.probe("udp", "fd66::3", 7001, 3000)).toBe(true);
    } finally {
      await agentA.close();
      await agentB.close();
      await driver.close();
    }
  });

  it("is reversible: remove deletes both ends, twice is fine, and a half-made pair is rebuilt", async () => {
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host });
    await plumber.remove({ namespace: "default", workload: "a" });
    await plumber.remove({ namespace: "default", workload: "a" });
    const links = await json<{ ifname: string }[]>(host, "link", "show");
    expect(links.map((l) => l.ifname)).not.toContain(
      plumber.hostIfName({ namespace: "default", workload: "a" }),
    );
    expect((await json<{ ifname: string }[]>(podA, "link", "show")).map((l) => l.ifname)).toEqual(["lo"]);
    expect(await plumber.check(specA())).toEqual([
      `host interface ${plumber.hostIfName({ namespace: "default", workload: "a" })} missing`,
    ]);
    // A leftover host end whose peer never reached the pod (a crash between the two steps).
    await lab.exec(host, [
      "ip",
      "link",
      "add",
      plumber.hostIfName({ namespace: "default", workload: "a" }),
      "type",
      "veth",
      "peer",
      "name",
      "stray0",
    ]);
    await plumber.add(specA());
    expect(await plumber.check(specA())).toEqual([]);
    expect((await json<{ ifname: string }[]>(host, "link", "show")).map((l) => l.ifname)).not.toContain(
      "stray0",
    );
  });

  it("sets the container-side MAC when asked, and check reports a different one", async () => {
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host });
    const spec = { ...specA(), mac: "02:42:AC:11:00:09" };
    const r = await plumber.add(spec);
    expect(r.containerMac).toBe("02:42:ac:11:00:09");
    const [inner] = await json<{ address: string }[]>(podA, "link", "show", "dev", "eth0");
    expect(inner!.address).toBe("02:42:ac:11:00:09");
    expect(await plumber.check(spec)).toEqual([]);
    expect(await plumber.check({ ...spec, mac: "02:42:ac:11:00:0a" })).toEqual(["container MAC differs"]);
    await expect(plumber.add({ ...spec, mac: "01:00:5e:00:00:01" })).rejects.toMatchObject({
      code: "invalid-options",
    });
    await plumber.remove(spec.endpoint);
  });

  it("enters a pod namespace given by its /var/run/netns path with ip -n (one exec, no nsenter)", async () => {
    const argvs: string[][] = [];
    const runner = {
      run: (argv: readonly string[], o?: Parameters<typeof lab.runner.run>[1]) => {
        argvs.push([...argv]);
        return lab.runner.run(argv, o);
      },
    };
    const plumber = createWorkloadPlumber({ runner, hostNetns: host });
    const spec = {
      endpoint: { namespace: "default", workload: "b" },
      containerNetns: pathNetns(`/var/run/netns/${podB.name}`),
      addresses: ["10.66.0.3/32"],
      mtu: 1450,
    };
    await plumber.remove(spec.endpoint);
    await plumber.add(spec);
    // (The lab's host namespace is a named one, not the test's own: its sysctls go through nsenter.)
    expect(argvs.some((a) => a[0] === "nsenter" && a.join(" ").includes(podB.name))).toBe(false);
    expect(argvs).toContainEqual(["ip", "-n", podB.name, "-force", "-batch", "-"]);
    const [inner] = await json<{ addr_info: { local: string }[] }[]>(podB, "addr", "show", "dev", "eth0");
    expect(inner!.addr_info.map((a) => a.local)).toContain("10.66.0.3");
    await plumber.remove(spec.endpoint);
  });

  it("validates names before touching the kernel", async () => {
    const plumber = createWorkloadPlumber({ runner: lab.runner, hostNetns: host });
    await expect(plumber.add({ ...specA(), containerIfName: "eth0; reboot" })).rejects.toMatchObject({
      code: "invalid-name",
    });
    await expect(plumber.add({ ...specA(), mtu: 10 })).rejects.toMatchObject({ code: "invalid-options" });
  });
});
