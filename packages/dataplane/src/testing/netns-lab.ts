import { randomBytes } from "node:crypto";
import { type NetnsHandle, inNetns, namedNetns } from "../kernel/netns.js";
import { type CommandRunner, createProcessRunner } from "../kernel/runner.js";

/** A set of scratch network namespaces that are all deleted by `close()`. */
export interface NetnsLab {
  /** Random suffix shared by this lab's namespaces. */
  readonly suffix: string;
  /** The runner the lab uses. */
  readonly runner: CommandRunner;
  /** Creates `<prefix>-<role>-<suffix>` (loopback up) and returns its handle. */
  add(role: string): Promise<NetnsHandle & { readonly kind: "named"; readonly name: string }>;
  /** Runs `argv` inside `ns`; returns stdout. */
  exec(ns: NetnsHandle, argv: readonly string[], stdin?: string): Promise<string>;
  /** Sets sysctls (`key=value`, slash or dot keys) inside `ns`. */
  sysctl(ns: NetnsHandle, ...assignments: string[]): Promise<void>;
  /** Deletes every namespace the lab made (and thereby every interface in them). */
  close(): Promise<void>;
  /** Same as close. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Creates a {@link NetnsLab}; `prefix` names this test's namespaces (e.g. `mgdp`). */
export function createNetnsLab(prefix: string, runner: CommandRunner = createProcessRunner()): NetnsLab {
  const suffix = randomBytes(3).toString("hex");
  const made: string[] = [];
  const close = async () => {
    for (const name of made.splice(0).reverse()) {
      await runner.run(["ip", "netns", "del", name]).catch(() => undefined);
    }
  };
  return {
    suffix,
    runner,
    async add(role) {
      const ns = namedNetns(`${prefix}-${role}-${suffix}`) as NetnsHandle & { kind: "named"; name: string };
      await runner.run(["ip", "netns", "add", ns.name]);
      made.push(ns.name);
      await runner.run(["ip", "-n", ns.name, "link", "set", "lo", "up"]);
      return ns;
    },
    async exec(ns, argv, stdin) {
      return (await runner.run(inNetns(ns, argv), { stdin })).stdout;
    },
    async sysctl(ns, ...assignments) {
      await runner.run(inNetns(ns, ["sysctl", "-q", "-w", ...assignments]));
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** One simulated host on the underlay. */
export interface LabHost {
  /** Node name (`host1`...). */
  readonly node: string;
  /** The host's namespace. */
  readonly ns: NetnsHandle & { readonly kind: "named"; readonly name: string };
  /** Underlay address with prefix (`10.77.0.1/24`). */
  readonly address: string;
}

/**
 * Builds `count` hosts on one underlay bridge; the bridge lives in its own namespace, so nothing is added
 * to the host namespace. Host `i` (1-based) gets `eth0` with `<subnet>.<i>/24` and IP forwarding on.
 */
export async function createUnderlay(
  lab: NetnsLab,
  count: number,
  subnet = "10.77.0",
): Promise<{ bridge: NetnsHandle; hosts: LabHost[] }> {
  const bridge = await lab.add("ul");
  const r = lab.runner;
  const b = bridge.kind === "named" ? bridge.name : "";
  await r.run(["ip", "-n", b, "link", "add", "br0", "type", "bridge"]);
  await r.run(["ip", "-n", b, "link", "set", "br0", "up"]);
  const hosts: LabHost[] = [];
  for (let i = 1; i <= count; i++) {
    const ns = await lab.add(`h${i}`);
    await r.run([
      "ip",
      "-n",
      ns.name,
      "link",
      "add",
      "eth0",
      "type",
      "veth",
      "peer",
      "name",
      `p${i}`,
      "netns",
      b,
    ]);
    await r.run(["ip", "-n", b, "link", "set", `p${i}`, "master", "br0", "up"]);
    const address = `${subnet}.${i}/24`;
    await r.run(["ip", "-n", ns.name, "addr", "add", address, "dev", "eth0"]);
    await r.run(["ip", "-n", ns.name, "link", "set", "eth0", "up"]);
    await lab.sysctl(
      ns,
      "net.ipv4.ip_forward=1",
      "net.ipv4.conf.all.rp_filter=0",
      "net.ipv4.conf.default.rp_filter=0",
    );
    hosts.push({ node: `host${i}`, ns, address });
  }
  return { bridge, hosts };
}
