/**
 * margay-ipam's verbs: a CNI IPAM plugin over @margay/ipam. One handle per attachment,
 * `<network>.<containerID>`; ADD is idempotent for a handle that already holds addresses; DEL releases
 * the handle; GC releases this network's handles that are not in `cni.dev/valid-attachments`.
 *
 * @packageDocumentation
 */

import { hostname } from "node:os";
import {
  type CmdArgs,
  CniError,
  CniErrorCode,
  type CniResult,
  isCniError,
  type PluginHandlers,
} from "@margay/cni";
import { type MargayIpamConfig, parseIpamConfig } from "./config.js";
import { type IpamSession, openSession } from "./backend.js";

/** Plugin-specific error codes (100+). */
export const MargayIpamErrorCode = {
  /** The pools have no free address. */
  PoolExhausted: 110,
  /** CHECK: the handle does not hold the address the result says. */
  AllocationMissing: 120,
  /** Any other IPAM failure. */
  IpamFailure: 130,
} as const;

/** The handle of an attachment. */
export function handleId(network: string, containerId: string): string {
  return `${network}.${containerId}`;
}

function toCniError(e: unknown): unknown {
  if (typeof e !== "object" || e === null || (e as { name?: unknown }).name === "CniError") return e;
  const err = e as { code?: unknown; message?: unknown; retryable?: unknown };
  if (typeof err.code !== "string") return e;
  const msg = typeof err.message === "string" ? err.message : String(e);
  if (err.code === "pool-exhausted") {
    return new CniError(MargayIpamErrorCode.PoolExhausted, "no free address in the pools", {
      details: msg,
      cause: e,
    });
  }
  if (err.retryable === true || err.code === "unavailable" || err.code === "conflict-retries-exhausted") {
    return new CniError(CniErrorCode.TryAgainLater, "IPAM datastore busy or unavailable", {
      details: msg,
      cause: e,
    });
  }
  return new CniError(MargayIpamErrorCode.IpamFailure, `IPAM error: ${err.code}`, { details: msg, cause: e });
}

async function withSession<T>(
  config: MargayIpamConfig,
  ensure: boolean,
  f: (s: IpamSession) => Promise<T>,
): Promise<T> {
  let session: IpamSession | undefined;
  try {
    session = await openSession(config, { ensure });
    return await f(session);
  } catch (e) {
    throw toCniError(e);
  } finally {
    await session?.close();
  }
}

function resultFor(config: MargayIpamConfig, cniVersion: string, ips: readonly string[]): CniResult {
  const result: CniResult = {
    cniVersion,
    ips: ips.map((ip) => {
      const family = ip.includes(":") ? 6 : 4;
      const pool = config.pools.find((p) => p.family === family)!;
      return { address: `${ip}/${pool.prefixLength}`, gateway: pool.gateway };
    }),
  };
  if (config.routes.length > 0) result.routes = config.routes.map((r) => ({ ...r }));
  if (config.dns !== undefined) result.dns = config.dns;
  return result;
}

function configOf(a: { config: Record<string, unknown> }): MargayIpamConfig {
  return parseIpamConfig(a.config, hostname());
}

/** The handlers given to `pluginMain`. */
export const margayIpamHandlers: PluginHandlers = {
  async add(a: CmdArgs) {
    const config = configOf(a);
    const handle = handleId(config.network, a.containerId);
    const ips = await withSession(config, true, async ({ ipam }) => {
      const held = await ipam.ipsByHandle(handle, { signal: a.signal });
      if (held.length > 0) return held;
      const attrs: Record<string, string> = {
        node: config.node,
        containerID: a.containerId,
        ifname: a.ifname,
        type: "cni",
      };
      if (a.cniArgs.k8s.namespace !== undefined) attrs.namespace = a.cniArgs.k8s.namespace;
      if (a.cniArgs.k8s.name !== undefined) attrs.pod = a.cniArgs.k8s.name;
      const r = await ipam.autoAssign({
        handleId: handle,
        node: config.node,
        num4: config.pools.some((p) => p.family === 4) ? 1 : 0,
        num6: config.pools.some((p) => p.family === 6) ? 1 : 0,
        pools: config.pools.map((p) => p.name),
        attrs,
        signal: a.signal,
      });
      return [...r.ipv4, ...r.ipv6].map((x) => x.ip);
    });
    return resultFor(config, a.cniVersion, ips);
  },

  async del(a: CmdArgs) {
    const config = configOf(a);
    await withSession(config, false, ({ ipam }) =>
      ipam.releaseByHandle(handleId(config.network, a.containerId), { signal: a.signal }),
    );
  },

  async check(a: CmdArgs) {
    const config = configOf(a);
    const held = await withSession(config, false, ({ ipam }) =>
      ipam.ipsByHandle(handleId(config.network, a.containerId), { signal: a.signal }),
    );
    if (held.length === 0)
      throw new CniError(MargayIpamErrorCode.AllocationMissing, "no addresses allocated to this attachment");
    for (const ip of a.prevResult?.ips ?? []) {
      const host = ip.address.slice(0, ip.address.lastIndexOf("/"));
      const inOurPools = config.pools.some((p) => p.family === (host.includes(":") ? 6 : 4));
      if (inOurPools && !held.includes(host)) {
        throw new CniError(
          MargayIpamErrorCode.AllocationMissing,
          "address of the result is not allocated to this attachment",
          { details: host },
        );
      }
    }
  },

  async status(a) {
    const config = parseIpamConfig(a.config, hostname());
    try {
      await withSession(config, false, ({ datastore }) => datastore.list("IPPool"));
    } catch (e) {
      throw new CniError(CniErrorCode.PluginNotAvailable, "IPAM datastore not available", {
        details: isCniError(e) && e.details ? e.details : e instanceof Error ? e.message : String(e),
        cause: e,
      });
    }
  },

  async gc(a) {
    const config = parseIpamConfig(a.config, hostname());
    const live = new Set(a.validAttachments.map((v) => handleId(config.network, v.containerID)));
    await withSession(config, false, async ({ ipam }) => {
      const report = await ipam.check(live, { signal: a.signal });
      for (const leak of report.leaks) {
        const h = leak.handleId;
        if (h?.startsWith(`${config.network}.`) && !live.has(h))
          await ipam.releaseByHandle(h, { signal: a.signal });
      }
      for (const h of report.handlesWithoutIps) {
        if (h.startsWith(`${config.network}.`) && !live.has(h))
          await ipam.releaseByHandle(h, { signal: a.signal });
      }
    });
  },
};
