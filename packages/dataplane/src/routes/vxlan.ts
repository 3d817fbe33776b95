import {
  type KernelCallOptions,
  bridgeBatch,
  bridgeJson,
  findLinkJson,
  ip,
  ipBatch,
  ipJson,
} from "../kernel/iproute.js";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import { validateInterfaceName } from "../kernel/names.js";
import { type NetnsHandle, ipArgv } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import type { VtepFdb, VtepNeighbor, VxlanDeviceSpec } from "./plan.js";

interface JsonLink {
  ifname: string;
  mtu?: number;
  address?: string;
  flags?: string[];
  linkinfo?: {
    info_kind?: string;
    info_data?: { id?: number; port?: number; local?: string; learning?: boolean };
  };
}
interface JsonAddr {
  addr_info?: { local?: string; prefixlen?: number; family?: string }[];
}
interface JsonNeigh {
  dst: string;
  lladdr?: string;
  state?: string[];
}
interface JsonFdb {
  mac: string;
  dst?: string;
  state?: string;
}

async function readLink(
  runner: CommandRunner,
  ns: NetnsHandle,
  name: string,
  options: KernelCallOptions,
): Promise<JsonLink | undefined> {
  return findLinkJson<JsonLink>(runner, ns, name, { ...options, details: true });
}

/**
 * Makes the VXLAN device match `spec` (create, or recreate if VNI/port/source differ; then MAC, MTU,
 * up, /32 tunnel address), and its permanent neighbour and FDB entries match the remote VTEPs, removing
 * any others: everything on this device is ours.
 */
export async function ensureVxlan(
  runner: CommandRunner,
  ns: NetnsHandle,
  spec: VxlanDeviceSpec,
  neighbors: readonly VtepNeighbor[],
  fdb: readonly VtepFdb[],
  options: KernelCallOptions = {},
): Promise<void> {
  const name = validateInterfaceName(spec.name);
  let link = await readLink(runner, ns, name, options);
  const data = link?.linkinfo?.info_data;
  const matches =
    link?.linkinfo?.info_kind === "vxlan" &&
    data?.id === spec.vni &&
    data.port === spec.port &&
    data.local === spec.local &&
    data.learning === false;
  if (link !== undefined && !matches) {
    await ip(runner, ns, ["link", "del", name], options);
    link = undefined;
  }
  const created = link === undefined;
  if (created) {
    await ip(
      runner,
      ns,
      [
        "link",
        "add",
        name,
        // Created with its MTU and MAC: no moment where it exists with the kernel's defaults.
        "mtu",
        String(spec.mtu),
        "address",
        spec.mac,
        "type",
        "vxlan",
        "id",
        String(spec.vni),
        "dstport",
        String(spec.port),
        "local",
        spec.local,
        "nolearning",
      ],
      options,
    );
  }
  const lines: string[] = [];
  if (!created && link?.address !== spec.mac) lines.push(`link set dev ${name} address ${spec.mac}`);
  if (!created && link?.mtu !== spec.mtu) lines.push(`link set dev ${name} mtu ${spec.mtu}`);
  if (!(link?.flags ?? []).includes("UP")) lines.push(`link set dev ${name} up`);
  const addrs = await ipJson<JsonAddr>(runner, ns, ["-4", "addr", "show", "dev", name], options);
  const have = (addrs[0]?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`);
  const want = `${spec.address}/32`;
  for (const a of have) if (a !== want) lines.push(`addr del ${a} dev ${name}`);
  if (!have.includes(want)) lines.push(`addr replace ${want} dev ${name}`);

  const neigh = await ipJson<JsonNeigh>(runner, ns, ["-4", "neigh", "show", "dev", name], options);
  const wantNeigh = new Map(neighbors.map((n) => [n.address, n.mac]));
  for (const n of neigh) {
    if (wantNeigh.get(n.dst) !== n.lladdr || !(n.state ?? []).includes("PERMANENT")) {
      lines.push(`neigh del ${n.dst} dev ${name}`);
    }
  }
  for (const n of neighbors) {
    const cur = neigh.find((x) => x.dst === n.address);
    if (cur?.lladdr !== n.mac || !(cur.state ?? []).includes("PERMANENT")) {
      lines.push(`neigh replace ${n.address} lladdr ${n.mac} dev ${name} nud permanent`);
    }
  }
  await ipBatch(runner, ns, lines, options);

  const fdbNow = (await bridgeJson<JsonFdb>(runner, ns, ["fdb", "show", "dev", name], options)).filter(
    (f) => f.dst !== undefined,
  );
  const wantFdb = new Map(fdb.map((f) => [f.mac, f.dst]));
  const fdbLines: string[] = [];
  for (const f of fdbNow) {
    if (wantFdb.get(f.mac) !== f.dst) fdbLines.push(`fdb del ${f.mac} dev ${name} dst ${f.dst} self`);
  }
  for (const f of fdb) {
    if (!fdbNow.some((x) => x.mac === f.mac && x.dst === f.dst)) {
      fdbLines.push(`fdb replace ${f.mac} dev ${name} dst ${f.dst} self permanent`);
    }
  }
  await bridgeBatch(runner, ns, fdbLines, options);
}

/** Deletes the VXLAN device if it exists (its neighbours, FDB entries and routes go with it). */
export async function removeVxlan(
  runner: CommandRunner,
  ns: NetnsHandle,
  name: string,
  options: KernelCallOptions = {},
): Promise<void> {
  const r = await runner.run(ipArgv(ns, ["link", "del", validateInterfaceName(name)]), {
    signal: options.signal,
    okCodes: [0, 1, 2],
  });
  if (r.code !== 0 && !/Cannot find device|does not exist/i.test(r.stderr)) {
    throw new DataplaneError(DataplaneErrorCode.CommandFailed, `cannot delete ${name}: ${r.stderr.trim()}`, {
      retryable: true,
      details: { ifname: name, stderr: r.stderr },
    });
  }
}

/** Probes whether the kernel can create an IPIP device (the ipip module), without leaving one behind. */
export async function probeIpip(
  runner: CommandRunner,
  ns: NetnsHandle,
  options: KernelCallOptions = {},
): Promise<{ supported: boolean; reason: string }> {
  const probe = `mgyipip${Math.floor(Math.random() * 1e6)}`;
  // One process: add then delete in a batch; the add failing is the answer.
  const r = await runner.run(ipArgv(ns, ["-batch", "-"]), {
    stdin: `link add ${probe} type ipip\nlink del ${probe}\n`,
    signal: options.signal,
    okCodes: [0, 1, 2],
  });
  if (r.code === 0) return { supported: true, reason: "ipip link created" };
  return {
    supported: false,
    reason: `kernel cannot create ipip links: ${r.stderr.trim().split("\n")[0] ?? ""}`,
  };
}
