import { randomBytes } from "node:crypto";
import { readFile, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canonicalIpOrThrow, cidrOrThrow, interfaceAddressText } from "../net.js";
import { DataplaneError, DataplaneErrorCode, isDataplaneError, throwIfAborted } from "../errors.js";
import { createIpBatchSession, type IpBatchSession } from "../kernel/ip-session.js";
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
import { type NetnsHandle, inNetns, ipArgv, namedNetns } from "../kernel/netns.js";
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
  /**
   * `/proc/sys/<key>` of this process's own namespace, used for the host side's sysctls when `hostNetns`
   * is the current namespace (no `sysctl` process per add). Default: file reads and writes. A seam for
   * tests, which must not touch the namespace they run in.
   */
  readonly procSys?:
    | {
        read(key: string): Promise<string>;
        write(key: string, value: string): Promise<void>;
      }
    | undefined;
  /**
   * A directory for the pod side's batch files (`margay-plumb-*.batch`, each removed once run; see
   * {@link createWorkloadPlumber}). Default: the system's temporary directory.
   */
  readonly scratchDir?: string | undefined;
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
  /**
   * Ends the helper process the plumber keeps for the host namespace (an idle one ends by itself within
   * a second); later calls start a new one.
   */
  close?(): void;
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

/** Where `ip -n NAME` looks for NAME (iproute2's NETNS_RUN_DIR). */
const IP_NETNS_DIR = "/run/netns";
const RUN_NETNS_PATH = /^(?:\/var)?\/run\/netns\/([^/]+)$/;

/**
 * The named handle of a path handle that is a namespace under /run/netns (as containerd's
 * `/var/run/netns/cni-...` is): `ip -n NAME` enters it itself, one exec instead of nsenter's two. Only
 * when the file `ip` would open is the very namespace (same device and inode); otherwise `ns` as given.
 */
async function asNamedNetns(ns: NetnsHandle): Promise<NetnsHandle> {
  if (ns.kind !== "path") return ns;
  const m = RUN_NETNS_PATH.exec(ns.path);
  if (m === null) return ns;
  try {
    const named = namedNetns(m[1]!);
    const [given, theirs] = await Promise.all([stat(ns.path), stat(`${IP_NETNS_DIR}/${m[1]!}`)]);
    return given.dev === theirs.dev && given.ino === theirs.ino ? named : ns;
  } catch {
    return ns;
  }
}

const PROC_SYS = {
  read: (key: string) => readFile(`/proc/sys/${key}`, "utf8"),
  write: (key: string, value: string) => writeFile(`/proc/sys/${key}`, value),
};

/**
 * Settings whose write takes the kernel's rtnl lock, and retries (spinning) until it gets it while other
 * veths are being made or removed; with the namespace default of each (which a new device copies).
 */
const RTNL_SYSCTL = /^net\/(ipv4|ipv6)\/conf\/[^/]+\/(forwarding|disable_ipv6)$/;

/** A random locally administered unicast MAC, as the kernel would give a veth end. */
function randomMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** `ip` said the device does not exist (a one-shot `ip`'s stderr, or a batch session's failed lines). */
function isMissingDevice(e: unknown): boolean {
  if (!isDataplaneError(e, DataplaneErrorCode.CommandFailed)) return false;
  const failed = e.details.failed as { error: string }[] | undefined;
  if (failed !== undefined)
    return failed.length > 0 && failed.every((f) => /Cannot find device/.test(f.error));
  const stderr = e.details.stderr;
  return typeof stderr === "string" && /Cannot find device/.test(stderr);
}

/** `link add ... netns` lines one helper process runs before it is replaced (see {@link createHostLines}). */
const NETNS_REFS_PER_PROCESS = 8;
/** An idle helper process ends after this long. */
const HOST_SESSION_IDLE_MS = 1_000;
/** Helpers running pod batches at most (see `podBatch`). */
const POD_HELPERS = 4;

interface HostSessionSlot {
  readonly session: IpBatchSession;
  busy: number;
  netnsRefs: number;
  retired: boolean;
}

/**
 * Host-namespace `ip` lines through one long-lived `ip -force -batch -` (a few lines on a pipe instead of
 * a process per add and per del), or one process per call when the runner cannot keep one. `ip` keeps
 * the namespace file of every `link add ... netns PATH` open for its life (iproute2 6.1), which would
 * keep deleted pods' namespaces (and, when a runtime skips DEL, their veths) alive: so the process is
 * replaced after {@link NETNS_REFS_PER_PROCESS} such lines and ends after {@link HOST_SESSION_IDLE_MS}
 * idle.
 */
function createHostLines(runner: CommandRunner, ns: NetnsHandle) {
  let current: HostSessionSlot | undefined;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const newSlot = (): HostSessionSlot | undefined => {
    const session = createIpBatchSession(runner, ns);
    return session === undefined ? undefined : { session, busy: 0, netnsRefs: 0, retired: false };
  };
  const settle = (slot: HostSessionSlot) => {
    if (slot.busy > 0) return;
    if (slot.retired) {
      slot.session.close();
      return;
    }
    clearTimeout(idle);
    idle = setTimeout(() => {
      if (current === slot && slot.busy === 0) {
        current = undefined;
        slot.session.close();
      }
    }, HOST_SESSION_IDLE_MS);
    idle.unref?.();
  };
  return {
    /** Runs `lines` (`netnsRefs`: how many of them name another namespace's file). */
    async run(lines: readonly string[], netnsRefs: number, options: KernelCallOptions): Promise<void> {
      current ??= newSlot();
      const slot = current;
      if (slot === undefined) return ipBatch(runner, ns, lines, options);
      slot.busy++;
      slot.netnsRefs += netnsRefs;
      if (slot.netnsRefs >= NETNS_REFS_PER_PROCESS) {
        slot.retired = true;
        current = undefined;
      }
      try {
        await slot.session.run(lines, options);
      } finally {
        slot.busy--;
        settle(slot);
      }
    },
    /** Batches in flight or queued on the current process. */
    get busy(): number {
      return current?.busy ?? 0;
    },
    close() {
      clearTimeout(idle);
      current?.session.close();
      current = undefined;
    },
  };
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

/**
 * Creates a {@link WorkloadPlumber}. With a runner that can keep processes (`start`), it keeps `ip`
 * helpers in the host namespace (one for veth creation and deletion; up to four that run pod batches
 * with `netns exec` from a file under `scratchDir`), so an IPv4 add into a named or `/run/netns` namespace starts no process of
 * the caller's own and a del is one line; `close()` ends them (idle ones end by themselves).
 */
export function createWorkloadPlumber(options: WorkloadPlumberOptions): WorkloadPlumber {
  const { runner, hostNetns } = options;
  const prefix = dataplanePrefix(options.ifPrefix ?? DATAPLANE_DEFAULTS.ifPrefix);
  const procSys = options.procSys ?? PROC_SYS;
  const hostLines = createHostLines(runner, hostNetns);
  // The pod side's batches, through other kept `ip`s (`netns exec NAME ip -force -batch FILE`): `ip`
  // forks the small process that enters the pod's namespace, instead of Node forking its large one (a
  // spawn holds the agent's event loop for milliseconds, tens of them under load). Not the veth helper,
  // so veth creation never waits behind a pod's batch; up to POD_HELPERS of them, so a burst's pod
  // batches run side by side (each `ip` waits for the process it forked) rather than in one queue; a
  // new one only when every one is busy.
  const podHelpers: ReturnType<typeof createHostLines>[] = [];
  const podLines = () => {
    const idle = podHelpers.find((h) => h.busy === 0);
    if (idle !== undefined) return idle;
    if (podHelpers.length < POD_HELPERS) {
      const h = createHostLines(runner, hostNetns);
      podHelpers.push(h);
      return h;
    }
    return podHelpers.reduce((a, b) => (b.busy < a.busy ? b : a));
  };
  // The batch files: created exclusively (never through someone's planted link), private, random names,
  // each removed once run, so nothing is left behind even without `close()`. A path with blanks could
  // not go into a batch line: then each pod batch is its own process.
  const scratchDir = options.scratchDir ?? tmpdir();
  const scratchOk = /^[^\s]+$/.test(scratchDir);
  let batchSeq = 0;

  /** Runs `lines` in the pod's namespace `ns`: through the helper when it is named, else one process. */
  async function podBatch(ns: NetnsHandle, lines: readonly string[], callOptions: KernelCallOptions) {
    if (ns.kind !== "named" || runner.start === undefined || !scratchOk)
      return ipBatch(runner, ns, lines, callOptions);
    const name = `margay-plumb-${process.pid}-${batchSeq++}-${randomBytes(6).toString("hex")}.batch`;
    const file = join(scratchDir, name);
    await writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600, flag: "wx" });
    try {
      await podLines().run([`netns exec ${ns.name} ip -force -batch ${file}`], 0, callOptions);
    } finally {
      void unlink(file).catch(() => undefined);
    }
  }
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

  /**
   * The host side's sysctls: written to /proc/sys when the host namespace is this process's own (no
   * process), else one `sysctl` entering the namespace. On a device made just now (`fresh`), a setting
   * that takes the rtnl lock is left alone when the namespace default, which the device copied at
   * creation, is already the value (a forwarding host's `forwarding`): in a burst of adds those writes
   * spun on the lock the other adds' veths held.
   */
  async function hostSysctls(
    values: Readonly<Record<string, string>>,
    fresh: boolean,
    callOptions: KernelCallOptions,
  ) {
    if (hostNetns.kind !== "current") return sysctls(runner, hostNetns, values, callOptions);
    throwIfAborted(callOptions.signal);
    await Promise.all(
      Object.entries(values).map(async ([key, value]) => {
        try {
          const m = fresh ? RTNL_SYSCTL.exec(key) : null;
          if (m !== null) {
            const dflt = await procSys.read(`net/${m[1]}/conf/default/${m[2]}`).catch(() => undefined);
            if (dflt?.trim() === value) return;
          }
          await procSys.write(key, value);
        } catch (e) {
          throw new DataplaneError(DataplaneErrorCode.CommandFailed, `sysctl ${key} could not be written`, {
            retryable: true,
            cause: e,
            details: { key, value, errno: (e as { code?: unknown }).code },
          });
        }
      }),
    );
  }

  /** Deletes the host end (and so the pair); a missing one is done. One line, no read first. */
  async function deletePair(host: string, callOptions: KernelCallOptions): Promise<void> {
    try {
      await hostLines.run([`link del dev ${host}`], 0, callOptions);
    } catch (e) {
      if (!isMissingDevice(e)) throw e;
    }
  }

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
      const cns = await asNamedNetns(spec.containerNetns);
      const hasV4 = addresses.some((a) => ipVersion(a.split("/")[0]!) === 4);
      const hasV6 = addresses.some((a) => ipVersion(a.split("/")[0]!) === 6);
      // The container end's MAC is chosen here (as the kernel would: random, locally administered) and
      // given at creation, so nothing has to read it back for the result.
      const newMac = mac ?? randomMac();

      // Fast path, one line to the host's `ip` helper: the pair with each end already in its final
      // namespace, MAC and MTU, the host end up (no namespace move, so no second pass under the kernel's
      // rtnl lock). "File exists" means an earlier attempt (or another pod) left something, which the
      // slow path below sorts out exactly as a first add would.
      const createLine = [
        "link",
        "add",
        host,
        "mtu",
        String(mtu),
        "address",
        HOST_VETH_MAC,
        "up",
        "type",
        "veth",
        "peer",
        "name",
        containerIfName,
        "address",
        newMac,
        "mtu",
        String(mtu),
        "netns",
        netnsRef(cns),
      ].join(" ");
      const createPair = () => hostLines.run([createLine], 1, callOptions);
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
      // A pair made now carries the MAC it was made with; an existing one keeps its own unless asked.
      const containerMac = created ? newMac : (mac ?? inner?.address ?? "");

      // Host side: fixed MAC, proxy ARP so it answers for 169.254.1.1, no delay, no IPv6 autoconf.
      const hostSide = async () => {
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
        await hostSysctls(hostSys, created, callOptions);
        const lines = created ? [] : [`link set dev ${host} address ${HOST_VETH_MAC} mtu ${mtu} up`];
        // The IPv6 gateway address waits for the sysctls: a host with IPv6 off by default refuses it.
        if (hasV6) lines.push(`addr replace ${WORKLOAD_GATEWAY_V6}/64 dev ${host} nodad`);
        if (lines.length > 0) await hostLines.run(lines, 0, callOptions);
      };

      // Container side: addresses, gateway routes; one process (two when IPv6 needs its sysctls first).
      const containerSide = async () => {
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
          created
            ? `link set dev ${containerIfName} up`
            : `link set dev ${containerIfName}${mac === undefined ? "" : ` address ${mac}`} mtu ${mtu} up`,
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
        await podBatch(cns, lines, callOptions);
      };

      // The two sides touch different namespaces and different devices: side by side. Both settle before
      // a failure is acted on, so the rollback below never races a step still running.
      const outcomes = await Promise.allSettled([hostSide(), containerSide()]);
      const failure = outcomes.find((o) => o.status === "rejected");
      if (failure !== undefined) {
        // A pair this call made and could not finish is removed, so a failed ADD leaves nothing behind.
        if (created) await deletePair(host, {}).catch(() => undefined);
        throw failure.reason;
      }
      return { hostIfName: host, containerIfName, containerMac, addresses };
    },
    async remove(endpoint, callOptions = {}) {
      await deletePair(hostIfName(endpoint), callOptions);
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
    close() {
      hostLines.close();
      for (const h of podHelpers) h.close();
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
