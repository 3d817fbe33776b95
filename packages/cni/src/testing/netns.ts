/**
 * Network namespaces for the conformance kit, handled through `ip netns` (argument arrays only). Node
 * cannot safely `setns`, so the kit never enters a namespace itself.
 *
 * @packageDocumentation
 */

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** A namespace the kit created; `close()` deletes it (idempotent). */
export interface TestNetns {
  /** Name under `/var/run/netns`. */
  readonly name: string;
  /** Path to hand to plugins as `CNI_NETNS`. */
  readonly path: string;
  /** Deletes the namespace. */
  close(): Promise<void>;
  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** An address as `ip -j addr` reports it. */
export interface NetnsAddress {
  /** Interface name. */
  ifname: string;
  /** `inet` or `inet6`. */
  family: string;
  /** Address. */
  local: string;
  /** Prefix length. */
  prefixlen: number;
}

/** A link as `ip -j addr` reports it, with its addresses. */
export interface NetnsLink {
  /** Interface name. */
  ifname: string;
  /** Link type (`loopback`, `ether`, …). */
  linkType: string;
  /** Its addresses. */
  addresses: NetnsAddress[];
}

/** Creates a namespace named `<prefix>-<random hex>`. */
export async function createNetns(prefix = "mgcni"): Promise<TestNetns> {
  const name = `${prefix}-${randomBytes(4).toString("hex")}`;
  await exec("ip", ["netns", "add", name]);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await exec("ip", ["netns", "del", name]).catch(() => undefined);
  };
  return { name, path: `/var/run/netns/${name}`, close, [Symbol.asyncDispose]: close };
}

/** The links and addresses inside a namespace (`ip -n <name> -j addr show`). */
export async function netnsLinks(name: string): Promise<NetnsLink[]> {
  const { stdout } = await exec("ip", ["-n", name, "-j", "addr", "show"]);
  const raw = JSON.parse(stdout || "[]") as Array<{
    ifname: string;
    link_type?: string;
    addr_info?: Array<{ family: string; local: string; prefixlen: number }>;
  }>;
  return raw.map((l) => ({
    ifname: l.ifname,
    linkType: l.link_type ?? "",
    addresses: (l.addr_info ?? []).map((a) => ({
      ifname: l.ifname,
      family: a.family,
      local: a.local,
      prefixlen: a.prefixlen,
    })),
  }));
}

/** A random id that satisfies the container id rules. */
export function randomContainerId(prefix = "ctr"): string {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}
