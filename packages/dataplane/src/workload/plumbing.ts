import { canonicalIpOrThrow, cidrOrThrow, interfaceAddressText } from "../net.js";
import { DataplaneError, DataplaneErrorCode, throwIfAborted } from "../errors.js";
import { type KernelCallOptions, findLinkJson, ip, ipBatch, ipJson } from "../kernel/iproute.js";
import {
  ipVersion,
  isInterfaceNameError,
  validateWorkloadInterfacePrefix,
  type WorkloadInterfaceIdentity,
  workloadInterfaceName,
} from "@margay/api";
import { DATAPLANE_DEFAULTS } from "../defaults.js";
import { validateInterfaceName, validateNetnsName, validateNetnsPath } from "../kernel/names.js";
import { type NetnsHandle, inNetns, ipArgv } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import type { Encapsulation } from "../updates.js";

/** IPv4 gateway every workload routes through; the host-side veth answers ARP for it (proxy ARP). */
export const WORKLOAD_GATEWAY_V4 = "169.254.1.1";
/** MAC of every host-side veth (as in Calico); its EUI-64 link-local is {@link WORKLOAD_GATEWAY_V6}. */
export const HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee";
/** IPv6 gateway of every workload: the host-side veth's link-local address. */
export const WORKLOAD_GATEWAY_V6 = "fe80::ecee:eeff:feee:eeee";

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Bytes of tunnel overhead per encapsulation (outer IPv4 headers). */
export const ENCAPSULATION_OVERHEAD: Readonly<Record<Encapsulation, number>> = Object.freeze({
  none: 0,
  vxlan: 50,
  ipip: 20,
});

/** Workload MTU for an underlay MTU and the pool's encapsulation. */
export function workloadMtu(underlayMtu: number, encapsulation: Encapsulation): number {
  return underlayMtu - ENCAPSULATION_OVERHEAD[encapsulation];
}

/** What the CNI plugin asks for. */
export interface WorkloadSpec {
  /**
   * The endpoint identity (namespace, workload, endpoint): names the host-side veth through
   * `workloadInterfaceName` of `@margay/api`, so the name is the `interfaceName` of the endpoint that
   * `convertPod` (or any writer using that function) gives this workload.
   */
  readonly endpoint: WorkloadInterfaceIdentity;
  /** The workload's network namespace. */
  readonly containerNetns: NetnsHandle;
  /** Interface name inside the workload. Default: `eth0`. */
  readonly containerIfName?: string | undefined;
  /** Addresses (`/32` and `/128` as allocated by IPAM). */
  readonly addresses: readonly string[];
  /** Veth MTU (see {@link workloadMtu}). Default: 1500. */
  readonly mtu?: number | undefined;
  /** MAC of the container-side interface (`aa:bb:cc:dd:ee:ff`, unicast). Default: the kernel's random one. */
  readonly mac?: string | undefined;
}

/** What was plumbed. */
export interface WorkloadResult {
  /** Host-side veth name. */
  readonly hostIfName: string;
  /** Container-side interface name. */
  readonly containerIfName: string;
  /** Container-side MAC (for the CNI result). */
  readonly containerMac: string;
  /** Addresses configured in the workload. */
  readonly addresses: readonly string[];
}

/** Options of {@link createWorkloadPlumber}. */
export interface WorkloadPlumberOptions {
  /** Runs ip/sysctl. */
  readonly runner: CommandRunner;
  /** The namespace host-side veths live in (the node's). Required: there is no implicit default. */
  readonly hostNetns: NetnsHandle;
  /** Host-side name prefix; must be one the driver polices. Default: `DATAPLANE_DEFAULTS.ifPrefix` (`mgy`). */
  readonly ifPrefix?: string | undefined;
}

/** Creates, checks and removes workload veths. Every step is idempotent. */
export interface WorkloadPlumber {
  /** Host-side veth name of an endpoint (`workloadInterfaceName(endpoint, ifPrefix)`). */
  hostIfName(endpoint: WorkloadInterfaceIdentity): string;
  /** Plumbs (or re-plumbs) the workload; safe to repeat. */
  add(spec: WorkloadSpec, options?: KernelCallOptions): Promise<WorkloadResult>;
  /** Removes the workload's veth pair (both ends); a missing pair is not an error. */
  remove(endpoint: WorkloadInterfaceIdentity, options?: KernelCallOptions): Promise<void>;
  /** Returns the problems found with a plumbed workload (empty: all as asked), like CNI CHECK. */
  check(spec: WorkloadSpec, options?: KernelCallOptions): Promise<string[]>;
}

interface JsonLink {
  ifname: string;
  address?: string;
  mtu?: number;
  flags?: string[];
  link_index?: number;
  ifindex?: number;
}
interface JsonAddr {
  ifname: string;
  addr_info?: { local: string; prefixlen: number; family: string; scope?: string }[];
}

// Validated again here (a handle may be a plain object): the reference goes into an `ip -batch` line.
function netnsRef(ns: NetnsHandle): string {
  if (ns.kind === "named") return validateNetnsName(ns.name);
  if (ns.kind === "path") return validateNetnsPath(ns.path);
  throw new DataplaneError(DataplaneErrorCode.InvalidOptions, "workload netns must be named or a path");
}

async function sysctls(
  runner: CommandRunner,
  ns: NetnsHandle,
  values: Readonly<Record<string, string>>,
  options: KernelCallOptions,
): Promise<void> {
  const args = Object.entries(values).map(([k, v]) => `${k}=${v}`);
  if (args.length > 0)
    await runner.run(inNetns(ns, ["sysctl", "-q", "-w", ...args]), { signal: options.signal });
}

/** The last JSON array row printed by `ip -json -batch` (each `show` line prints one array). */
function lastJsonRow<T>(stdout: string): T | undefined {
  const text = stdout
    .trim()
    .split("\n")
    .filter((l) => l.trim().startsWith("["))
    .at(-1);
  if (text === undefined) return undefined;
  try {
    return (JSON.parse(text) as T[])[0];
  } catch {
    return undefined;
  }
}

/** `ip -json addr show dev NAME` in `ns` (link fields and addresses); `undefined` if there is none. */
async function findLinkWithAddrs(
  runner: CommandRunner,
  ns: NetnsHandle,
  name: string,
  options: KernelCallOptions,
): Promise<(JsonLink & JsonAddr) | undefined> {
  const r = await runner.run(ipArgv(ns, ["-json", "addr", "show", "dev", name]), {
    signal: options.signal,
    okCodes: [0, 1],
  });
  if (r.code !== 0) {
    if (/does not exist|Cannot find device/i.test(r.stderr)) return undefined;
    throw new DataplaneError(DataplaneErrorCode.CommandFailed, `ip addr show failed: ${r.stderr.trim()}`, {
      retryable: true,
      details: { ifname: name, stderr: r.stderr },
    });
  }
  return (JSON.parse(r.stdout.trim() || "[]") as (JsonLink & JsonAddr)[])[0];
}

async function findLink(
  runner: CommandRunner,
  ns: NetnsHandle,
  name: string,
  options: KernelCallOptions,
): Promise<JsonLink | undefined> {
  return findLinkJson<JsonLink>(runner, ns, name, options);
}

/** Creates a {@link WorkloadPlumber}. */
export function createWorkloadPlumber(options: WorkloadPlumberOptions): WorkloadPlumber {
  const { runner, hostNetns } = options;
  const prefix = dataplanePrefix(options.ifPrefix ?? DATAPLANE_DEFAULTS.ifPrefix);
  const hostIfName = (endpoint: WorkloadInterfaceIdentity) => {
    try {
      return workloadInterfaceName(endpoint, prefix);
    } catch (e) {
      if (!isInterfaceNameError(e)) throw e;
      throw new DataplaneError(DataplaneErrorCode.InvalidName, e.message, {
        details: { ...e.details },
        cause: e,
      });
    }
  };

  function normalize(spec: WorkloadSpec) {
    const containerIfName = validateInterfaceName(spec.containerIfName ?? "eth0");
    const mtu = spec.mtu ?? 1500;
    if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
      throw new DataplaneError(DataplaneErrorCode.InvalidOptions, "invalid MTU", { details: { mtu } });
    }
    const addresses = spec.addresses.map((a) => interfaceAddressText(cidrOrThrow(a, "mask")));
    netnsRef(spec.containerNetns);
    const mac = spec.mac?.toLowerCase();
    // Unicast only: the multicast bit is the low bit of the first octet.
    if (mac !== undefined && (!MAC_RE.test(mac) || (Number.parseInt(mac.slice(0, 2), 16) & 1) === 1)) {
      throw new DataplaneError(DataplaneErrorCode.InvalidOptions, "invalid MAC", { details: { mac } });
    }
    return { containerIfName, mtu, addresses, mac, host: hostIfName(spec.endpoint) };
  }

  return {
    hostIfName,
    async add(spec, callOptions = {}) {
      throwIfAborted(callOptions.signal);
      const { containerIfName, mtu, addresses, mac, host } = normalize(spec);
      const cns = spec.containerNetns;
      const hasV4 = addresses.some((a) => ipVersion(a.split("/")[0]!) === 4);
      const hasV6 = addresses.some((a) => ipVersion(a.split("/")[0]!) === 6);

      // Fast path, one process: create the pair with each end already in its final namespace and the
      // host end already carrying its MAC and MTU (no namespace move, so no second pass under the
      // kernel's rtnl lock), and bring the host end up. Without `-force` the batch stops at the first
      // failure: "File exists" means an earlier attempt (or another pod) left something, which the
      // slow path below sorts out exactly as a first add would.
      const createArgs = [
        "link",
        "add",
        host,
        "mtu",
        String(mtu),
        "address",
        HOST_VETH_MAC,
        "type",
        "veth",
        "peer",
        "name",
        containerIfName,
        "mtu",
        String(mtu),
        "netns",
        netnsRef(cns),
      ];
      const createPair = () =>
        runner.run(ipArgv(hostNetns, ["-batch", "-"]), {
          stdin: `${createArgs.join(" ")}\nlink set dev ${host} up\n`,
          signal: callOptions.signal,
        });
      let created = false;
      try {
        await createPair();
        created = true;
      } catch {
        throwIfAborted(callOptions.signal);
      }

      let inner: (JsonLink & JsonAddr) | undefined;
      if (!created) {
        // A host end without its container end (or the other way round) is a half-done earlier attempt.
        let hostLink = await findLink(runner, hostNetns, host, callOptions);
        // `addr show` also carries the link's fields: one read for the peer check and the addresses.
        inner = await findLinkWithAddrs(runner, cns, containerIfName, callOptions);
        if (hostLink !== undefined && (inner === undefined || inner.link_index !== hostLink.ifindex)) {
          await ip(runner, hostNetns, ["link", "del", host], callOptions);
          hostLink = undefined;
        }
        if (hostLink === undefined) {
          if (inner !== undefined) {
            throw new DataplaneError(DataplaneErrorCode.CommandFailed, "container interface already exists", {
              details: { ifname: containerIfName, endpoint: spec.endpoint },
            });
          }
          await createPair();
          created = true;
        }
      }

      try {
        // Host side: fixed MAC, proxy ARP so it answers for 169.254.1.1, no delay, no IPv6 autoconf.
        const hostSys: Record<string, string> = {
          [`net/ipv4/conf/${host}/proxy_arp`]: "1",
          [`net/ipv4/neigh/${host}/proxy_delay`]: "0",
          [`net/ipv4/conf/${host}/forwarding`]: "1",
          [`net/ipv4/conf/${host}/rp_filter`]: "0",
        };
        if (hasV6) {
          hostSys[`net/ipv6/conf/${host}/disable_ipv6`] = "0";
          hostSys[`net/ipv6/conf/${host}/accept_ra`] = "0";
          hostSys[`net/ipv6/conf/${host}/forwarding`] = "1";
        }
        await sysctls(runner, hostNetns, hostSys, callOptions);
        const hostLines = [`link set dev ${host} address ${HOST_VETH_MAC} mtu ${mtu} up`];
        // The IPv6 gateway address waits for the sysctls: a host with IPv6 off by default refuses it.
        if (hasV6) hostLines.push(`addr replace ${WORKLOAD_GATEWAY_V6}/64 dev ${host} nodad`);
        await ipBatch(runner, hostNetns, created ? hostLines.slice(1) : hostLines, callOptions);

        // Container side: addresses, gateway routes.
        const cSys: Record<string, string> = {};
        if (hasV6) {
          cSys["net/ipv6/conf/all/disable_ipv6"] = "0";
          cSys[`net/ipv6/conf/${containerIfName}/accept_dad`] = "0";
        }
        await sysctls(runner, cns, cSys, callOptions);
        // A pair made just now has no addresses yet: only an existing one had them read above.
        const haveAddrs = ((created ? undefined : inner?.addr_info) ?? [])
          .filter((a) => a.scope !== "link")
          .map((a) => `${canonicalIpOrThrow(a.local)}/${a.prefixlen}`);
        const lines: string[] = [
          `link set dev ${containerIfName}${mac === undefined ? "" : ` address ${mac}`} mtu ${mtu} up`,
          "link set dev lo up",
        ];
        for (const a of haveAddrs)
          if (!addresses.includes(a)) lines.push(`addr del ${a} dev ${containerIfName}`);
        for (const a of addresses)
          if (!haveAddrs.includes(a)) lines.push(`addr add ${a} dev ${containerIfName} nodad`);
        if (hasV4) {
          lines.push(`route replace ${WORKLOAD_GATEWAY_V4}/32 dev ${containerIfName} scope link`);
          // Proxy ARP answers only if the host has a route to 169.254.1.1 (a default route usually); a
          // permanent entry for the fixed host MAC makes the gateway resolvable on hosts without one.
          lines.push(
            `neigh replace ${WORKLOAD_GATEWAY_V4} lladdr ${HOST_VETH_MAC} dev ${containerIfName} nud permanent`,
          );
          lines.push(`route replace 0.0.0.0/0 via ${WORKLOAD_GATEWAY_V4} dev ${containerIfName}`);
        }
        if (hasV6) lines.push(`route replace ::/0 via ${WORKLOAD_GATEWAY_V6} dev ${containerIfName}`);
        // The same process reports the final link (its MAC, for the result) after the changes.
        lines.push(`link show dev ${containerIfName}`);
        const { stdout } = await runner.run(ipArgv(cns, ["-json", "-force", "-batch", "-"]), {
          stdin: `${lines.join("\n")}\n`,
          signal: callOptions.signal,
        });
        const final = lastJsonRow<JsonLink>(stdout);
        return {
          hostIfName: host,
          containerIfName,
          containerMac: final?.address ?? inner?.address ?? "",
          addresses,
        };
      } catch (e) {
        // A pair this call made and could not finish is removed, so a failed ADD leaves nothing behind.
        if (created) {
          await runner
            .run(ipArgv(hostNetns, ["link", "del", host]), { okCodes: [0, 1, 2] })
            .catch(() => undefined);
        }
        throw e;
      }
    },
    async remove(endpoint, callOptions = {}) {
      const host = hostIfName(endpoint);
      if ((await findLink(runner, hostNetns, host, callOptions)) !== undefined) {
        await ip(runner, hostNetns, ["link", "del", host], callOptions);
      }
    },
    async check(spec, callOptions = {}) {
      const { containerIfName, mtu, addresses, mac, host } = normalize(spec);
      const problems: string[] = [];
      const hostLink = await findLink(runner, hostNetns, host, callOptions);
      const inner = await findLink(runner, spec.containerNetns, containerIfName, callOptions);
      if (hostLink === undefined) return [`host interface ${host} missing`];
      if (inner === undefined) return [`container interface ${containerIfName} missing`];
      if (inner.link_index !== hostLink.ifindex)
        problems.push("container interface is not the host veth's peer");
      if (hostLink.mtu !== mtu || inner.mtu !== mtu) problems.push("MTU differs");
      if (hostLink.address !== HOST_VETH_MAC) problems.push("host veth MAC differs");
      if (mac !== undefined && inner.address !== mac) problems.push("container MAC differs");
      if (!(hostLink.flags ?? []).includes("UP") || !(inner.flags ?? []).includes("UP"))
        problems.push("link down");
      const have = await ipJson<JsonAddr>(
        runner,
        spec.containerNetns,
        ["addr", "show", "dev", containerIfName],
        callOptions,
      );
      const haveAddrs = (have[0]?.addr_info ?? []).map(
        (a) => `${canonicalIpOrThrow(a.local)}/${a.prefixlen}`,
      );
      for (const a of addresses) if (!haveAddrs.includes(a)) problems.push(`address ${a} missing`);
      return problems;
    },
  };
}

/** A workload interface prefix as the dataplane takes it: `invalid-options` unless the API's rule holds. */
export function dataplanePrefix(prefix: string): string {
  try {
    return validateWorkloadInterfacePrefix(prefix);
  } catch (e) {
    if (!isInterfaceNameError(e)) throw e;
    throw new DataplaneError(DataplaneErrorCode.InvalidOptions, e.message, { details: { prefix }, cause: e });
  }
}
