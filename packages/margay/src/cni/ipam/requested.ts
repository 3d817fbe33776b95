/**
 * What an ADD asks for beyond "any address": specific addresses and pools, from every place runtimes
 * put them (the same places host-local reads):
 * - `IP=<ip>[,<ip>]` in `CNI_ARGS` (podman `--ip`, resent by `podman network reload`);
 * - `runtimeConfig.ips` (the `ips` capability) and `args.cni.ips`, addresses with or without a prefix;
 * - `runtimeConfig.ipRanges` (the `ipRanges` capability, as host-local) whose `subnet` names a pool, and
 *   `args.cni.pools` (pool names or CIDRs, as Calico's `ipv4_pools` / `ipv6_pools`).
 * Nothing is ignored: a malformed request, an address outside the network's pools or a reserved one,
 * or two addresses of one family fail with a CNI error naming where the request came from.
 *
 * @packageDocumentation
 */

import { CniError, CniErrorCode } from "@margay/cni";
import { canonicalCidr, parseIp } from "@margay/ipam";
import { reservedFor } from "./backend.js";
import { type MargayIpamConfig, type PoolConfig, poolOfAddress } from "./config.js";

/** A requested address, resolved to its pool. */
export interface RequestedIp {
  ip: string;
  family: 4 | 6;
  pool: PoolConfig;
  /** Where it came from, e.g. `CNI_ARGS IP` or `$.runtimeConfig.ips[0]`. */
  source: string;
}

/** Everything an ADD requested. */
export interface RequestedAllocation {
  /** At most one per family. */
  ips: RequestedIp[];
  /** Pools to allocate from (per family); empty = every configured pool. */
  pools: PoolConfig[];
}

/** Codes of the request errors (besides the malformed-input codes 4 and 7). */
const UNAVAILABLE = 140;

function bad(source: string, message: string, code: number): CniError {
  return new CniError(code, `${source}: ${message}`, { context: { path: source } });
}

function stringList(v: unknown, source: string): string[] {
  if (!Array.isArray(v)) throw bad(source, "must be an array of strings", CniErrorCode.InvalidNetworkConfig);
  return v.map((e, i) => {
    if (typeof e !== "string" || e === "")
      throw bad(`${source}[${i}]`, "must be a non-empty string", CniErrorCode.InvalidNetworkConfig);
    return e;
  });
}

function objectAt(o: unknown, key: string): Record<string, unknown> | undefined {
  if (typeof o !== "object" || o === null || Array.isArray(o)) return undefined;
  const v = (o as Record<string, unknown>)[key];
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function resolveIp(config: MargayIpamConfig, text: string, source: string, malformed: number): RequestedIp {
  const slash = text.indexOf("/");
  const host = slash < 0 ? text : text.slice(0, slash);
  let addr: ReturnType<typeof parseIp>;
  try {
    addr = parseIp(host);
  } catch {
    throw bad(source, `not an IP address: ${JSON.stringify(text)}`, malformed);
  }
  const { version: family, text: canonical } = addr;
  const pool = poolOfAddress(config.pools, canonical);
  if (pool === undefined) {
    throw bad(
      source,
      `${canonical} is not in a pool of network ${config.network} (${config.pools.map((p) => p.cidr).join(", ")})`,
      UNAVAILABLE,
    );
  }
  if (slash >= 0 && text.slice(slash + 1) !== String(pool.prefixLength)) {
    throw bad(source, `prefix of ${text} differs from pool ${pool.cidr}'s /${pool.prefixLength}`, malformed);
  }
  const hostLen = family === 4 ? 32 : 128;
  if (reservedFor(pool).includes(`${canonical}/${hostLen}`)) {
    throw bad(
      source,
      `${canonical} is reserved in pool ${pool.cidr} (gateway, network or broadcast)`,
      UNAVAILABLE,
    );
  }
  return { ip: canonical, family, pool, source };
}

function resolvePool(config: MargayIpamConfig, ref: string, source: string): PoolConfig {
  let cidr: string | undefined;
  try {
    cidr = canonicalCidr(ref, { mask: true });
  } catch {
    cidr = undefined;
  }
  const pool = config.pools.find((p) => p.name === ref || (cidr !== undefined && p.cidr === cidr));
  if (pool === undefined) {
    throw bad(
      source,
      `pool ${JSON.stringify(ref)} is not one of network ${config.network}'s (${config.pools.map((p) => `${p.name} ${p.cidr}`).join(", ")})`,
      CniErrorCode.InvalidNetworkConfig,
    );
  }
  return pool;
}

/**
 * Collects the requested addresses and pools of an ADD. `conf` is the plugin's whole stdin
 * configuration (where `runtimeConfig` and `args` live); `cniArgs` the parsed `CNI_ARGS`.
 */
export function requestedAllocation(
  config: MargayIpamConfig,
  conf: Record<string, unknown>,
  cniArgs: Readonly<Record<string, string>>,
): RequestedAllocation {
  const ips: RequestedIp[] = [];
  const add = (r: RequestedIp) => {
    const same = ips.find((x) => x.family === r.family);
    if (same === undefined) ips.push(r);
    else if (same.ip !== r.ip) {
      throw bad(
        r.source,
        `asks for ${r.ip} while ${same.source} asks for ${same.ip}: one address per family per attachment`,
        CniErrorCode.InvalidNetworkConfig,
      );
    }
  };
  if (cniArgs.IP !== undefined) {
    const parts = cniArgs.IP.split(",").map((s) => s.trim());
    for (const p of parts) add(resolveIp(config, p, "CNI_ARGS IP", CniErrorCode.InvalidEnvironmentVariables));
  }
  const runtime = objectAt(conf, "runtimeConfig");
  const cni = objectAt(objectAt(conf, "args"), "cni");
  const sources: Array<[unknown, string]> = [
    [runtime?.ips, "$.runtimeConfig.ips"],
    [cni?.ips, "$.args.cni.ips"],
  ];
  for (const [v, source] of sources) {
    if (v === undefined) continue;
    for (const [i, t] of stringList(v, source).entries())
      add(resolveIp(config, t, `${source}[${i}]`, CniErrorCode.InvalidNetworkConfig));
  }
  const pools: PoolConfig[] = [];
  const addPool = (p: PoolConfig) => {
    if (!pools.includes(p)) pools.push(p);
  };
  if (cni?.pools !== undefined) {
    for (const [i, ref] of stringList(cni.pools, "$.args.cni.pools").entries())
      addPool(resolvePool(config, ref, `$.args.cni.pools[${i}]`));
  }
  const ranges = runtime?.ipRanges;
  if (ranges !== undefined) {
    if (!Array.isArray(ranges))
      throw bad(
        "$.runtimeConfig.ipRanges",
        "must be an array of range sets",
        CniErrorCode.InvalidNetworkConfig,
      );
    ranges.forEach((set, i) => {
      const list = Array.isArray(set) ? set : [set];
      list.forEach((r, j) => {
        const at = `$.runtimeConfig.ipRanges[${i}][${j}]`;
        if (typeof r !== "object" || r === null || Array.isArray(r))
          throw bad(at, "must be an object with a subnet", CniErrorCode.InvalidNetworkConfig);
        const o = r as Record<string, unknown>;
        const extra = Object.keys(o).filter((k) => k !== "subnet");
        if (extra.length > 0) {
          throw bad(
            `${at}.${extra[0]}`,
            "not supported: margay-ipam allocates from whole pools (name a pool's CIDR in subnet)",
            CniErrorCode.InvalidNetworkConfig,
          );
        }
        if (typeof o.subnet !== "string")
          throw bad(`${at}.subnet`, "must be a CIDR string", CniErrorCode.InvalidNetworkConfig);
        addPool(resolvePool(config, o.subnet, `${at}.subnet`));
      });
    });
  }
  return { ips, pools };
}
