/**
 * The `ipam` section margay-ipam reads. Every error is a code-7 CNI error naming the JSON path.
 *
 * ```json
 * "ipam": {
 *   "type": "margay-ipam",
 *   "datastore": { "type": "memory", "snapshotPath": "/var/lib/margay/ipam.json" },
 *   "pools": [{ "cidr": "10.250.0.0/24", "blockSize": 26 }],
 *   "routes": [{ "dst": "0.0.0.0/0" }]
 * }
 * ```
 * or `"datastore": { "type": "etcd", "endpoints": ["https://10.0.0.1:2379"], "caCertFile": ..., ... }` for
 * many hosts: the shared schema of `src/config/datastore-config.ts` (secrets as file paths, Calico's
 * `ETCD_*` variables for what is left out, unknown fields rejected). `gcGracePeriodMs` (default 60 s)
 * protects ADDs in flight from GC.
 *
 * @packageDocumentation
 */

import {
  type CniDns,
  CniError,
  CniErrorCode,
  type CniRoute,
  expectArray,
  expectCidr,
  expectInteger,
  expectIp,
  expectObject,
  expectString,
  invalidAt,
  pathKey,
  validateDns,
  validateRoute,
} from "@margay/cni";
import { cidrContains, cidrSize, cidrsOverlap, formatIp, parseCidr, parseIp } from "@margay/ipam";
import {
  type DatastoreConfig,
  isDatastoreConfigError,
  parseDatastoreConfig,
} from "../../config/datastore-config.js";

/** Where the IPAM state lives: the shared datastore configuration of every Margay executable. */
export type { DatastoreConfig };

/**
 * Default etcd timeouts of the plugin. Per request, not per verb: ADD must survive a loaded host (gRPC
 * connection setup is slow there); STATUS and DEL have their own overall
 * deadlines on top (`VERB_DEADLINES_MS` in plugin.ts).
 */
export const CNI_DATASTORE_TIMEOUTS = Object.freeze({ dialTimeoutMs: 3_000, requestTimeoutMs: 10_000 });

/** One pool the plugin allocates from (created in the datastore when absent). */
export interface PoolConfig {
  /** Pool name. Default: `<network>-<index>`. */
  name: string;
  /** Canonical pool CIDR. */
  cidr: string;
  /** Address family. */
  family: 4 | 6;
  /** Prefix length reported with each address (the pool's). */
  prefixLength: number;
  /** Block prefix length. Default: the IPAM's (26 / 122). */
  blockSize?: number | undefined;
  /** Gateway reported in the result and never handed out. Default: the pool's first address + 1. */
  gateway: string;
}

/** Parsed `ipam` section. */
export interface MargayIpamConfig {
  /** Network name (from the configuration). */
  network: string;
  /** Datastore. */
  datastore: DatastoreConfig;
  /** Node name for block affinity. Default: the host name. */
  node: string;
  /** Pools; an ADD takes one address per family from the first of that family with room. */
  pools: PoolConfig[];
  /** GC leaves leaked allocations younger than this alone (an ADD may still be in flight). Default 60 000. */
  gcGracePeriodMs: number;
  /** Routes for the result. */
  routes: CniRoute[];
  /** DNS for the result. */
  dns?: CniDns | undefined;
}

/** The configured pool holding `ip`, if any. */
export function poolOfAddress(pools: readonly PoolConfig[], ip: string): PoolConfig | undefined {
  let addr: ReturnType<typeof parseIp>;
  try {
    addr = parseIp(ip);
  } catch {
    return undefined;
  }
  return pools.find((p) => cidrContains(parseCidr(p.cidr), addr));
}

/** Network address, prefix, first host and (IPv4) broadcast of a CIDR. */
export function poolGeometry(cidr: string): {
  family: 4 | 6;
  base: string;
  prefix: number;
  firstHost: string;
  last: string;
} {
  const c = parseCidr(cidr, { mask: true });
  return {
    family: c.version,
    base: formatIp(c.version, c.network),
    prefix: c.prefixLength,
    firstHost: formatIp(c.version, c.network + 1n),
    last: formatIp(c.version, c.network + cidrSize(c) - 1n),
  };
}

/**
 * Parses the `ipam` section of a plugin configuration (`conf.ipam`). `env` (the plugin's environment)
 * supplies Calico's `ETCD_*` variables for what `ipam.datastore` leaves out.
 */
export function parseIpamConfig(
  conf: Record<string, unknown>,
  defaultNode: string,
  env: Readonly<Record<string, string | undefined>> = {},
): MargayIpamConfig {
  const network = expectString(conf.name, "$.name", true);
  const path = "$.ipam";
  const ipam = expectObject(conf.ipam, path);
  let datastore: DatastoreConfig;
  try {
    datastore = parseDatastoreConfig(ipam.datastore, {
      path: pathKey(path, "datastore"),
      env,
      ...CNI_DATASTORE_TIMEOUTS,
    });
  } catch (e) {
    if (!isDatastoreConfigError(e)) throw e;
    throw new CniError(CniErrorCode.InvalidNetworkConfig, e.message, {
      context: { path: e.details.field },
      cause: e,
    });
  }
  const node = ipam.node === undefined ? defaultNode : expectString(ipam.node, pathKey(path, "node"), true);
  const pools = expectArray(ipam.pools, pathKey(path, "pools"), (e, p) => {
    const o = expectObject(e, p);
    const cidr = expectCidr(o.cidr, pathKey(p, "cidr"));
    const g = poolGeometry(cidr);
    const maxLen = g.family === 4 ? 30 : 126;
    if (g.prefix > maxLen) throw invalidAt(pathKey(p, "cidr"), `prefix must be at most /${maxLen}`);
    const pool: PoolConfig = {
      name: "",
      cidr: `${g.base}/${g.prefix}`,
      family: g.family,
      prefixLength: g.prefix,
      gateway: o.gateway === undefined ? g.firstHost : expectIp(o.gateway, pathKey(p, "gateway")),
    };
    if (o.name !== undefined) pool.name = expectString(o.name, pathKey(p, "name"), true);
    if (o.blockSize !== undefined) {
      pool.blockSize = expectInteger(
        o.blockSize,
        pathKey(p, "blockSize"),
        g.prefix,
        g.family === 4 ? 32 : 128,
      );
    }
    return pool;
  });
  if (pools.length === 0) throw invalidAt(pathKey(path, "pools"), "must list at least one pool");
  pools.forEach((p, i) => {
    if (p.name === "") p.name = `${network}-${i}`;
  });
  for (let i = 0; i < pools.length; i++) {
    for (let j = 0; j < i; j++) {
      if (cidrsOverlap(parseCidr(pools[i]!.cidr), parseCidr(pools[j]!.cidr)))
        throw invalidAt(pathKey(path, "pools"), `pools ${pools[j]!.cidr} and ${pools[i]!.cidr} overlap`);
    }
    if (pools.findIndex((p) => p.name === pools[i]!.name) !== i)
      throw invalidAt(pathKey(path, "pools"), `pool name ${JSON.stringify(pools[i]!.name)} used twice`);
  }
  const gcGracePeriodMs =
    ipam.gcGracePeriodMs === undefined
      ? 60_000
      : expectInteger(ipam.gcGracePeriodMs, pathKey(path, "gcGracePeriodMs"), 0, 86_400_000);
  const routes =
    ipam.routes === undefined ? [] : expectArray(ipam.routes, pathKey(path, "routes"), validateRoute);
  const out: MargayIpamConfig = { network, datastore, node, pools, gcGracePeriodMs, routes };
  if (ipam.dns !== undefined) out.dns = validateDns(ipam.dns, pathKey(path, "dns"));
  return out;
}
