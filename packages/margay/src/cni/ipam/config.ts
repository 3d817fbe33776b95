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
 * or `"datastore": { "type": "etcd", "endpoints": ["http://127.0.0.1:2379"] }` for many hosts.
 *
 * @packageDocumentation
 */

import {
  type CniDns,
  type CniRoute,
  expectArray,
  expectCidr,
  expectInteger,
  expectIp,
  expectObject,
  expectString,
  expectStringArray,
  invalidAt,
  pathKey,
  validateDns,
  validateRoute,
} from "@margay/cni";
import { cidrSize, formatIp, parseCidr } from "@margay/ipam";

/** Where the IPAM state lives. */
export type DatastoreConfig =
  | {
      /** One host: the memory backend persisted to a snapshot file, serialised by a lock file. */
      type: "memory";
      /** Snapshot file (its directory is created). */
      snapshotPath: string;
      /** Longest wait for the lock before failing with code 11. Default 10 000 ms. */
      lockTimeoutMs: number;
    }
  | {
      /** Many hosts: etcd v3, compare-and-swap transactions. */
      type: "etcd";
      /** Client URLs. */
      endpoints: string[];
      /** Key prefix. Default: the datastore's. */
      prefix?: string | undefined;
      /** Request deadline. Default: the datastore's. */
      requestTimeoutMs?: number | undefined;
    };

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
  /** Pools, at most one per family. */
  pools: PoolConfig[];
  /** Routes for the result. */
  routes: CniRoute[];
  /** DNS for the result. */
  dns?: CniDns | undefined;
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
    family: c.family,
    base: formatIp(c.family, c.base),
    prefix: c.prefix,
    firstHost: formatIp(c.family, c.base + 1n),
    last: formatIp(c.family, c.base + cidrSize(c) - 1n),
  };
}

/** Parses the `ipam` section of a plugin configuration (`conf.ipam`). */
export function parseIpamConfig(conf: Record<string, unknown>, defaultNode: string): MargayIpamConfig {
  const network = expectString(conf.name, "$.name", true);
  const path = "$.ipam";
  const ipam = expectObject(conf.ipam, path);
  const dsPath = pathKey(path, "datastore");
  const ds = expectObject(ipam.datastore, dsPath);
  let datastore: DatastoreConfig;
  const dsType = expectString(ds.type, pathKey(dsPath, "type"));
  if (dsType === "memory") {
    const snapshotPath = expectString(ds.snapshotPath, pathKey(dsPath, "snapshotPath"), true);
    if (!snapshotPath.startsWith("/"))
      throw invalidAt(pathKey(dsPath, "snapshotPath"), "must be an absolute path");
    const lockTimeoutMs =
      ds.lockTimeoutMs === undefined
        ? 10_000
        : expectInteger(ds.lockTimeoutMs, pathKey(dsPath, "lockTimeoutMs"), 1, 600_000);
    datastore = { type: "memory", snapshotPath, lockTimeoutMs };
  } else if (dsType === "etcd") {
    const endpoints = expectStringArray(ds.endpoints, pathKey(dsPath, "endpoints"));
    if (endpoints.length === 0)
      throw invalidAt(pathKey(dsPath, "endpoints"), "must list at least one endpoint");
    datastore = { type: "etcd", endpoints };
    if (ds.prefix !== undefined) datastore.prefix = expectString(ds.prefix, pathKey(dsPath, "prefix"), true);
    if (ds.requestTimeoutMs !== undefined) {
      datastore.requestTimeoutMs = expectInteger(
        ds.requestTimeoutMs,
        pathKey(dsPath, "requestTimeoutMs"),
        1,
        600_000,
      );
    }
  } else {
    throw invalidAt(pathKey(dsPath, "type"), `must be "memory" or "etcd" (got ${JSON.stringify(dsType)})`);
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
  if (pools.filter((p) => p.family === 4).length > 1 || pools.filter((p) => p.family === 6).length > 1) {
    throw invalidAt(pathKey(path, "pools"), "at most one pool per address family");
  }
  const routes =
    ipam.routes === undefined ? [] : expectArray(ipam.routes, pathKey(path, "routes"), validateRoute);
  const out: MargayIpamConfig = { network, datastore, node, pools, routes };
  if (ipam.dns !== undefined) out.dns = validateDns(ipam.dns, pathKey(path, "dns"));
  return out;
}
