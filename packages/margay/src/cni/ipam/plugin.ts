/**
 * margay-ipam's verbs: a CNI IPAM plugin over @margay/ipam. One handle per attachment,
 * `<network>.<containerID>`; ADD is idempotent for a handle that already holds addresses and honours
 * requested addresses and pools; DEL releases the handle; GC goes through the IPAM's node-scoped,
 * grace-period `gc` for this node and this network only.
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
import { isDatastoreConfigError } from "../../config/datastore-config.js";
import { type IpamSession, openSession } from "./backend.js";
import { type MargayIpamConfig, type PoolConfig, parseIpamConfig, poolOfAddress } from "./config.js";
import { type RequestedAllocation, requestedAllocation } from "./requested.js";

/** Plugin-specific error codes (100+). */
export const MargayIpamErrorCode = {
  /** The pools have no free address. */
  PoolExhausted: 110,
  /** CHECK: the handle does not hold the address the result says. */
  AllocationMissing: 120,
  /** Any other IPAM failure. */
  IpamFailure: 130,
  /** A requested address is held by another attachment, or its pool cannot give it. */
  RequestedAddressUnavailable: 140,
} as const;

/**
 * Longest time STATUS and DEL take against an etcd datastore, whatever etcd does (dead, frozen,
 * partitioned): a runtime must never block container teardown or its readiness report on us.
 */
export const VERB_DEADLINES_MS = Object.freeze({ status: 3_000, del: 5_000 });

/** The handle of an attachment. */
export function handleId(network: string, containerId: string): string {
  return `${network}.${containerId}`;
}

/** Datastore / IPAM codes that mean "the configuration is wrong", not "try again later". */
const CONFIG_CODES: ReadonlySet<string> = new Set(["tls", "unauthenticated", "permission-denied"]);
const REQUEST_CODES: ReadonlySet<string> = new Set([
  "already-allocated",
  "block-in-use",
  "pool-disabled",
  "not-in-pool",
]);

function errorDetails(err: { code?: unknown; message?: unknown; details?: unknown }, where?: string): string {
  const reason =
    typeof err.details === "object" && err.details !== null
      ? (err.details as { reason?: unknown }).reason
      : undefined;
  return JSON.stringify({
    code: err.code,
    ...(typeof reason === "string" ? { reason } : {}),
    message: typeof err.message === "string" ? err.message : String(err),
    ...(where === undefined ? {} : { datastore: where }),
  });
}

/** The datastore error behind an IPAM `datastore` error, if any. */
function rootCause(e: unknown): unknown {
  let cur = e;
  for (let i = 0; i < 4; i++) {
    const c = cur as { code?: unknown; cause?: unknown };
    if (c?.code === "datastore" && typeof c.cause === "object" && c.cause !== null) cur = c.cause;
    else break;
  }
  return cur;
}

/** Maps any failure to the CNI error the runtime sees; `where` (the datastore) goes into datastore errors. */
export function toCniError(e: unknown, where?: string): unknown {
  if (typeof e !== "object" || e === null || isCniError(e)) return e;
  if (isDatastoreConfigError(e)) {
    return new CniError(CniErrorCode.InvalidNetworkConfig, e.message, {
      details: JSON.stringify({ code: e.code, ...e.details }),
      cause: e,
    });
  }
  const err = rootCause(e) as { code?: unknown; message?: unknown; retryable?: unknown; details?: unknown };
  if (typeof err.code !== "string") return e;
  const msg = typeof err.message === "string" ? err.message : String(err);
  if (
    CONFIG_CODES.has(err.code) ||
    (err.code === "invalid" && (err.details as { backend?: unknown })?.backend === "etcd")
  ) {
    return new CniError(
      CniErrorCode.InvalidNetworkConfig,
      `IPAM datastore refused the configuration: ${err.code}`,
      {
        details: errorDetails(err, where),
        cause: e,
      },
    );
  }
  // Both mean "no address for this host now": the pools are full, or this host is at its per-family block
  // limit with strictAffinity (or nothing to borrow). The message with the numbers is in `details`.
  if (err.code === "pool-exhausted" || err.code === "host-block-limit") {
    const what = err.code === "pool-exhausted" ? "no free address in the pools" : "host block limit reached";
    return new CniError(MargayIpamErrorCode.PoolExhausted, what, {
      details: msg,
      cause: e,
    });
  }
  if (REQUEST_CODES.has(err.code)) {
    return new CniError(
      MargayIpamErrorCode.RequestedAddressUnavailable,
      "requested address cannot be assigned",
      {
        details: errorDetails(err),
        cause: e,
      },
    );
  }
  if (err.retryable === true || err.code === "unavailable" || err.code === "conflict-retries-exhausted") {
    return new CniError(CniErrorCode.TryAgainLater, "IPAM datastore busy or unavailable", {
      details: where === undefined ? msg : `${where}: ${msg}`,
      cause: e,
    });
  }
  return new CniError(MargayIpamErrorCode.IpamFailure, `IPAM error: ${err.code}`, { details: msg, cause: e });
}

/** Where the datastore is, for error messages (never credentials: they are not in the config). */
function whereIs(config: MargayIpamConfig): string {
  return config.datastore.type === "etcd"
    ? `etcd ${config.datastore.endpoints.join(", ")}`
    : `snapshot ${config.datastore.snapshotPath}`;
}

/**
 * Runs `f` with a signal that aborts after `ms`, and gives up waiting at `ms` even if `f` ignores the
 * signal (a frozen etcd can leave a call pending): the runtime gets `code` naming the datastore.
 */
async function withDeadline<T>(
  ms: number | undefined,
  parent: AbortSignal,
  code: number,
  what: string,
  config: MargayIpamConfig,
  f: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (ms === undefined) return f(parent);
  const ac = new AbortController();
  const onAbort = () => ac.abort(parent.reason);
  parent.addEventListener("abort", onAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new CniError(code, `${what}: no answer from the IPAM datastore within ${ms} ms`, {
        details: `no answer from ${whereIs(config)} within ${ms} ms`,
      });
      ac.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([f(ac.signal), expired]);
  } finally {
    clearTimeout(timer);
    parent.removeEventListener("abort", onAbort);
  }
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
    throw toCniError(e, whereIs(config));
  } finally {
    await session?.close();
  }
}

function resultFor(config: MargayIpamConfig, cniVersion: string, ips: readonly string[]): CniResult {
  const result: CniResult = {
    cniVersion,
    ips: ips.map((ip) => {
      const pool = poolOfAddress(config.pools, ip);
      if (pool === undefined) {
        throw new CniError(
          MargayIpamErrorCode.IpamFailure,
          "attachment holds an address outside this network's pools",
          {
            details: ip,
          },
        );
      }
      return { address: `${ip}/${pool.prefixLength}`, gateway: pool.gateway };
    }),
  };
  if (config.routes.length > 0) result.routes = config.routes.map((r) => ({ ...r }));
  if (config.dns !== undefined) result.dns = config.dns;
  return result;
}

function configOf(a: { config: Record<string, unknown> }): MargayIpamConfig {
  return parseIpamConfig(a.config, hostname(), process.env);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

async function allocate(
  session: IpamSession,
  config: MargayIpamConfig,
  a: CmdArgs,
  handle: string,
  req: RequestedAllocation,
): Promise<string[]> {
  const { ipam } = session;
  const held = await ipam.ipsByHandle(handle, { signal: a.signal });
  const wanted = req.ips.map((r) => r.ip);
  if (held.length > 0) {
    // A resent ADD (podman resends IP= on `network reload`) gets the addresses it holds; asking for
    // others while holding some is a conflict the runtime must resolve with DEL first.
    if (wanted.length === 0 || wanted.every((w) => held.includes(w))) return held;
    throw new CniError(
      MargayIpamErrorCode.RequestedAddressUnavailable,
      "attachment already holds other addresses than the ones requested",
      { details: JSON.stringify({ held, requested: wanted }) },
    );
  }
  const attrs: Record<string, string> = {
    node: config.node,
    containerID: a.containerId,
    ifname: a.ifname,
    type: "cni",
  };
  if (a.cniArgs.k8s.namespace !== undefined) attrs.namespace = a.cniArgs.k8s.namespace;
  if (a.cniArgs.k8s.name !== undefined) attrs.pod = a.cniArgs.k8s.name;
  const out: string[] = [];
  try {
    for (const r of req.ips) {
      const got = await ipam.assignIP(r.ip, { handleId: handle, attrs, node: config.node, signal: a.signal });
      out.push(got.ip);
    }
    const families = ([4, 6] as const).filter(
      (f) => config.pools.some((p) => p.family === f) && !req.ips.some((r) => r.family === f),
    );
    if (families.length > 0) {
      const pools = families.flatMap((f) => poolsFor(config, req, f)).map((p) => p.name);
      const r = await ipam.autoAssign({
        handleId: handle,
        node: config.node,
        num4: families.includes(4) ? 1 : 0,
        num6: families.includes(6) ? 1 : 0,
        pools,
        attrs,
        signal: a.signal,
      });
      out.push(...[...r.ipv4, ...r.ipv6].map((x) => x.ip));
    }
  } catch (e) {
    // All or nothing: what this ADD took goes back (the handle held nothing before it).
    if (out.length > 0) await ipam.releaseByHandle(handle).catch(() => undefined);
    throw e;
  }
  return out;
}

/** The pools of `family` an ADD may use: the requested ones of that family, else every configured one. */
function poolsFor(config: MargayIpamConfig, req: RequestedAllocation, family: 4 | 6): PoolConfig[] {
  const requested = req.pools.filter((p) => p.family === family);
  return requested.length > 0 ? requested : config.pools.filter((p) => p.family === family);
}

/** The handlers given to `pluginMain`. */
export const margayIpamHandlers: PluginHandlers = {
  async add(a: CmdArgs) {
    const config = configOf(a);
    const req = requestedAllocation(config, a.config as unknown as Record<string, unknown>, a.cniArgs.values);
    const handle = handleId(config.network, a.containerId);
    const ips = await withSession(config, true, (s) => allocate(s, config, a, handle, req));
    if (
      req.ips.length > 0 &&
      !sameSet(
        req.ips.map((r) => r.ip),
        ips.filter((ip) => req.ips.some((r) => r.ip === ip)),
      )
    ) {
      throw new CniError(MargayIpamErrorCode.RequestedAddressUnavailable, "requested address not assigned", {
        details: JSON.stringify({ requested: req.ips.map((r) => r.ip), assigned: ips }),
      });
    }
    return resultFor(config, a.cniVersion, ips);
  },

  async del(a: CmdArgs) {
    const config = configOf(a);
    const ms = config.datastore.type === "etcd" ? VERB_DEADLINES_MS.del : undefined;
    await withDeadline(ms, a.signal, CniErrorCode.TryAgainLater, "DEL", config, (signal) =>
      withSession(config, false, ({ ipam }) =>
        ipam.releaseByHandle(handleId(config.network, a.containerId), { signal }),
      ),
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
      if (poolOfAddress(config.pools, host) !== undefined && !held.includes(host)) {
        throw new CniError(
          MargayIpamErrorCode.AllocationMissing,
          "address of the result is not allocated to this attachment",
          { details: host },
        );
      }
    }
  },

  async status(a) {
    const config = configOf(a);
    if (config.datastore.type === "etcd") {
      const { probeEndpoints } = await import("./status.js");
      await probeEndpoints(config, VERB_DEADLINES_MS.status, a.signal);
      return;
    }
    try {
      await withSession(config, false, ({ datastore }) => datastore.list("IPPool"));
    } catch (e) {
      if (isCniError(e) && e.cniCode === CniErrorCode.InvalidNetworkConfig) throw e;
      throw new CniError(CniErrorCode.PluginNotAvailable, "IPAM datastore not available", {
        details: isCniError(e) && e.details ? e.details : e instanceof Error ? e.message : String(e),
        cause: e,
      });
    }
  },

  async gc(a) {
    const config = configOf(a);
    const live = a.validAttachments.map((v) => handleId(config.network, v.containerID));
    await withSession(config, false, ({ ipam }) =>
      // Only this node's allocations of this network, each re-verified under compare-and-swap and
      // left alone while younger than the grace period: an ADD in flight anywhere is never freed.
      ipam.gc(live, config.gcGracePeriodMs, {
        scope: { node: config.node, handlePrefix: `${config.network}.` },
        signal: a.signal,
      }),
    );
  },
};
