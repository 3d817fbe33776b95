/**
 * The IPAM client: `createIpam` drives the pure core (`block.ts`, `block-walk.ts`, `check.ts`) over a
 * `Datastore`. Every change is one multi-key compare-and-swap transaction (blocks, affinities
 * and the handle together); a `conflict` means another writer got there first, so the client re-reads
 * what it had cached and retries.
 *
 * Laid out along libcalico-go's `lib/ipam` seams, all working on one `IpamContext`:
 * - `context.ts`: datastore, options, caches, logger; the serialised loop and the conflict retry;
 * - `config-cache.ts`: pools, IPAM config and reservations (cached), pool qualification;
 * - `block-rw.ts`: the block reader-writer (reads through the caches, one-transaction commits);
 * - `allocate.ts` (`autoAssign`), `assign-ip.ts` (`assignIP`), `release.ts`, `affinity.ts`,
 *   `check-gc.ts` (utilisation, check, gc).
 *
 * This file is the facade: it validates the options once and binds the operations to the context.
 */
import { claimAffinity, releaseHostAffinities } from "./affinity.js";
import { autoAssign } from "./allocate.js";
import { assignIP } from "./assign-ip.js";
import { check, gc, utilisation } from "./check-gc.js";
import type { Ipam, IpamOptions } from "./client-types.js";
import { createIpamContext } from "./context.js";
import { ipsByHandle, releaseByHandle, releaseIPs } from "./release.js";

/**
 * Creates an IPAM client over a datastore. Operations of one client are serialised; clients on many
 * hosts run concurrently.
 *
 * @example
 * ```ts
 * const ipam = createIpam({ datastore });
 * const { ipv4, ipv6 } = await ipam.autoAssign({ handleId: "net.c1", node: "n1", num4: 1, num6: 1 });
 * await ipam.releaseByHandle("net.c1");
 * ```
 */
export function createIpam(options: IpamOptions): Ipam {
  const ctx = createIpamContext(options);
  const close = () => ctx.close();
  return {
    autoAssign: (args) => autoAssign(ctx, args),
    assignIP: (ip, args) => assignIP(ctx, ip, args),
    releaseIPs: (ips, opts) => releaseIPs(ctx, ips, opts),
    releaseByHandle: (handleId, opts) => releaseByHandle(ctx, handleId, opts),
    ipsByHandle: (handleId, opts) => ipsByHandle(ctx, handleId, opts),
    claimAffinity: (cidr, node, opts) => claimAffinity(ctx, cidr, node, opts),
    releaseHostAffinities: (node, opts) => releaseHostAffinities(ctx, node, opts),
    utilisation: (opts) => utilisation(ctx, opts),
    check: (liveHandles, opts) => check(ctx, liveHandles, opts),
    gc: (liveHandles, gracePeriodMs, opts) => gc(ctx, liveHandles, gracePeriodMs, opts),
    invalidate: () => ctx.invalidate(),
    close,
    [Symbol.asyncDispose]: close,
  };
}
