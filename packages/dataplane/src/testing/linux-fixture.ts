import type { NetnsHandle } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import { CONFORMANCE_FIXTURE } from "./fixture.js";

/**
 * Prepares a scratch namespace as the conformance suite expects of a kernel driver: `eth0` (a veth whose
 * peer stays in the same namespace) holding the fixture's host address, and the workload interfaces.
 */
export async function prepareLinuxConformanceNetns(
  runner: CommandRunner,
  ns: NetnsHandle & { kind: "named"; name: string },
): Promise<void> {
  const ip = (...args: string[]) => runner.run(["ip", "-n", ns.name, ...args]);
  await ip("link", "add", "eth0", "type", "veth", "peer", "name", "eth0p");
  await ip("addr", "add", CONFORMANCE_FIXTURE.hostAddress, "dev", "eth0");
  await ip("link", "set", "eth0", "up");
  await ip("link", "set", "eth0p", "up");
  for (const name of CONFORMANCE_FIXTURE.workloadIfNames) {
    await ip("link", "add", name, "type", "veth", "peer", "name", `${name}p`);
    await ip("link", "set", name, "up");
    await ip("link", "set", `${name}p`, "up");
  }
}
