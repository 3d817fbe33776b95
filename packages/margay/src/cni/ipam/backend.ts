/**
 * Opens the IPAM over the configured datastore for one invocation and makes sure the configured pools
 * and their reserved addresses exist. The memory backend is opened under the lock file and flushed
 * before the lock is released.
 *
 * @packageDocumentation
 */

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { CniError, CniErrorCode } from "@margay/cni";
import type { Datastore } from "@margay/datastore";
import type { Ipam } from "@margay/ipam";
import type { MargayIpamConfig, PoolConfig } from "./config.js";
import { poolGeometry } from "./config.js";
import { acquireFileLock } from "./file-lock.js";

/** An open IPAM session. */
export interface IpamSession {
  /** The IPAM client. */
  ipam: Ipam;
  /** The datastore under it. */
  datastore: Datastore;
  /** Flushes (memory), closes and releases the lock. */
  close(): Promise<void>;
}

const POOL_KIND = "IPPool";
const RESERVATION_KIND = "IPReservation";

function isCode(e: unknown, code: string): boolean {
  return typeof e === "object" && e !== null && (e as { code?: unknown }).code === code;
}

/** Addresses a pool never hands out: the gateway, and for IPv4 the network and broadcast addresses. */
export function reservedFor(pool: PoolConfig): string[] {
  const g = poolGeometry(pool.cidr);
  const hostLen = pool.family === 4 ? 32 : 128;
  const out = [`${pool.gateway}/${hostLen}`];
  if (pool.family === 4) out.push(`${g.base}/32`, `${g.last}/32`);
  return [...new Set(out)];
}

async function ensure(
  ds: Datastore,
  kind: string,
  name: string,
  spec: Record<string, unknown>,
  same: (cur: Record<string, unknown>) => boolean,
): Promise<void> {
  try {
    const cur = (await ds.get({ kind, name })) as unknown as { spec: Record<string, unknown> };
    if (!same(cur.spec)) {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `${kind} ${name} exists with a different definition`,
        {
          details: JSON.stringify(cur.spec),
        },
      );
    }
    return;
  } catch (e) {
    if (!isCode(e, "not-found")) throw e;
  }
  try {
    // margay.io/v1: the API version the datastore validator (`@margay/api`) accepts.
    await ds.create({ apiVersion: "margay.io/v1", kind, metadata: { name }, spec });
  } catch (e) {
    if (!isCode(e, "already-exists")) throw e; // another host created it first
  }
}

/** Creates missing pools and reservations; rejects a pool that exists with another CIDR. */
export async function ensurePools(ds: Datastore, config: MargayIpamConfig): Promise<void> {
  for (const pool of config.pools) {
    const spec: Record<string, unknown> = { cidr: pool.cidr };
    if (pool.blockSize !== undefined) spec.blockSize = pool.blockSize;
    await ensure(ds, POOL_KIND, pool.name, spec, (cur) => cur.cidr === pool.cidr);
    const reserved = reservedFor(pool);
    await ensure(ds, RESERVATION_KIND, `${pool.name}-reserved`, { reservedCIDRs: reserved }, () => true);
  }
}

/** Opens a session; `ensure` creates missing pools and reservations first (ADD). */
export async function openSession(
  config: MargayIpamConfig,
  options: { ensure: boolean },
): Promise<IpamSession> {
  const { createIpam } = await import("@margay/ipam");
  let datastore: Datastore;
  let unlock: (() => Promise<void>) | undefined;
  let flush: (() => Promise<void>) | undefined;
  if (config.datastore.type === "memory") {
    mkdirSync(dirname(config.datastore.snapshotPath), { recursive: true });
    const lock = await acquireFileLock(`${config.datastore.snapshotPath}.lock`, {
      timeoutMs: config.datastore.lockTimeoutMs,
    });
    unlock = () => lock.release();
    try {
      const { createMemoryDatastore } = await import("./memory-backend.js");
      // One fsync'd snapshot per invocation (flushed in close(), under the lock) instead of one per
      // write: nothing is acknowledged to the runtime before that flush, so nothing acknowledged is lost.
      const { apiValidator } = await import("../../config/api-validator.js");
      const memory = createMemoryDatastore({
        snapshotPath: config.datastore.snapshotPath,
        durability: "async",
        validate: apiValidator,
      });
      flush = () => memory.flush();
      datastore = memory;
    } catch (e) {
      await lock.release();
      throw e;
    }
  } else {
    const { loadDatastoreConnection } = await import("../../config/datastore-config.js");
    // Files (CA, certificate, key, password) are read here, once; errors name the file.
    const connection = await loadDatastoreConnection(config.datastore, "$.ipam.datastore");
    const [{ createEtcdDatastore }, { apiValidator }] = await Promise.all([
      import("./etcd-backend.js"),
      import("../../config/api-validator.js"),
    ]);
    datastore = createEtcdDatastore({ ...connection, readAttempts: 1, validate: apiValidator });
  }
  const ipam = createIpam({ datastore });
  const close = async () => {
    try {
      await ipam.close();
      await flush?.();
      await datastore.close();
    } finally {
      await unlock?.();
    }
  };
  if (options.ensure) {
    try {
      await ensurePools(datastore, config);
    } catch (e) {
      await close();
      throw e;
    }
  }
  return { ipam, datastore, close };
}
