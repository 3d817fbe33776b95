/**
 * Follows the IPPools and keeps this node's VXLAN tunnel address and MAC in step with them (Calico's
 * `calico-node -allocate-tunnel-addrs`): when a pool is switched to VXLAN while the agent runs the Node
 * gets its tunnel address and MAC (so the route calculator has VTEPs), when no pool uses VXLAN any more
 * they are released and removed. The work is {@link registerNode}'s (idempotent, compare-and-swap), re-run
 * after the VXLAN-relevant fields of the pools changed, debounced, one run at a time; a failure is logged,
 * reported on health component `registration` and retried with back-off, never thrown.
 *
 * @packageDocumentation
 */
import { type BackoffOptions, createBackoff, type IPPool, sleep } from "@margay/api";
import { createSyncer, type Syncer } from "@margay/datastore";
import type { Ipam } from "@margay/ipam";
import { messageOf } from "./agent-error.js";
import type { Health, NodeAddresses } from "./context.js";
import { type RegistrationContext, type RegistrationResult, registerNode } from "./registration.js";

/** Options of {@link startTunnelAddressFollower}. */
export interface TunnelAddressFollowerOptions {
  /** The node's addresses, as registration wrote them. */
  readonly addresses: NodeAddresses;
  /** IPAM client for the tunnel addresses. */
  readonly ipam: Ipam;
  /** Quiet time after a pool change before the tunnel addresses are reconciled, ms. Default 200. */
  readonly debounceMs?: number | undefined;
  /** Back-off between retries of a failed reconcile. Default 500 ms doubling to 30 s, ±50 % jitter. */
  readonly retry?: BackoffOptions | undefined;
  /** Called after each successful reconcile with its result. Must not throw. */
  readonly onReconciled?: ((result: RegistrationResult) => void) | undefined;
}

/** A running follower. */
export interface TunnelAddressFollower {
  /** The last successful reconcile's result (undefined before the first). */
  readonly last: RegistrationResult | undefined;
  /** Successful reconciles since start. */
  readonly reconciles: number;
  /** Stops following; a reconcile in flight is aborted. Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_DEBOUNCE_MS = 200;
const DEFAULT_RETRY: BackoffOptions = { initialMs: 500, maxMs: 30_000, jitter: 0.5 };

/**
 * The pool fields that decide whether, and from where, a node gets a VXLAN tunnel address: a change of
 * anything else (NAT, IPIP, block size) leaves the tunnel addresses alone.
 */
export function vxlanPoolSignature(pools: Iterable<IPPool>): string {
  const rows = [...pools]
    .map((p) => [
      p.metadata.name,
      p.spec.cidr,
      p.spec.vxlanMode ?? "Never",
      p.spec.disabled === true,
      p.spec.allowedUses ?? null,
      p.spec.nodeSelector ?? null,
    ])
    .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  return JSON.stringify(rows);
}

/**
 * Starts following the IPPools of `ctx.datastore`. Once the pools are listed it reconciles once (the
 * pools may have changed between registration and now), then after every change of
 * {@link vxlanPoolSignature}.
 */
export function startTunnelAddressFollower(
  ctx: RegistrationContext & { readonly health: Health; readonly signal: AbortSignal },
  options: TunnelAddressFollowerOptions,
): TunnelAddressFollower {
  const log = ctx.logger.child({ component: "tunnel-addresses" });
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  if (ctx.signal.aborted) stop.abort();
  else ctx.signal.addEventListener("abort", onAbort, { once: true });
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const backoff = createBackoff(options.retry ?? DEFAULT_RETRY);
  const regCtx: RegistrationContext = { ...ctx, signal: stop.signal };

  const pools = new Map<string, IPPool>();
  let synced = false;
  let applied: string | undefined;
  let last: RegistrationResult | undefined;
  let reconciles = 0;
  // Wakes the reconcile loop; set when a change arrived since it last looked.
  let dirty = false;
  let wake: (() => void) | undefined;
  const kick = () => {
    dirty = true;
    wake?.();
  };

  const syncer: Syncer<IPPool> = createSyncer<IPPool>({
    datastore: ctx.datastore,
    kinds: ["IPPool"],
    logger: ctx.logger,
    signal: stop.signal,
  });

  const read = async () => {
    try {
      for await (const batch of syncer) {
        for (const ev of batch) {
          if (ev.type === "in-sync") synced = true;
          else if (ev.type === "upsert") pools.set(ev.key.name, ev.object);
          else pools.delete(ev.key.name);
        }
        if (synced && vxlanPoolSignature(pools.values()) !== applied) kick();
      }
    } catch (e) {
      if (stop.signal.aborted) return;
      log.error({ err: e }, "IPPool syncer stopped; tunnel addresses no longer follow the pools");
      ctx.health.report("registration", {
        live: true,
        ready: true,
        reason: `VXLAN tunnel addresses no longer follow the pools: ${messageOf(e)}`,
      });
    }
  };

  const loop = async () => {
    while (!stop.signal.aborted) {
      if (!dirty) {
        await new Promise<void>((resolve) => {
          const done = () => {
            stop.signal.removeEventListener("abort", done);
            wake = undefined;
            resolve();
          };
          wake = done;
          stop.signal.addEventListener("abort", done, { once: true });
        });
        continue;
      }
      // Debounce: a burst of pool edits (an operator applying several) reconciles once.
      await sleep(debounceMs, stop.signal).catch(() => {});
      if (stop.signal.aborted) return;
      dirty = false;
      const signature = vxlanPoolSignature(pools.values());
      try {
        // registerNode reads the pools itself (never a cached view) and writes under compare-and-swap.
        const result = await registerNode(regCtx, options.addresses, { ipam: options.ipam });
        applied = signature;
        last = result;
        reconciles++;
        backoff.reset();
        log.info(
          {
            ipv4TunnelAddr: result.vxlan.ipv4?.address,
            ipv6TunnelAddr: result.vxlan.ipv6?.address,
          },
          "VXLAN tunnel addresses reconciled with the pools",
        );
        options.onReconciled?.(result);
      } catch (e) {
        if (stop.signal.aborted) return;
        const delay = backoff.next();
        log.error({ err: e, retryInMs: delay }, "reconciling the VXLAN tunnel addresses failed; retrying");
        // Still live and serving local pods; cross-host VXLAN traffic waits for the retry.
        ctx.health.report("registration", {
          live: true,
          ready: true,
          reason: `VXLAN tunnel address not reconciled with the pools: ${messageOf(e)}`,
        });
        await sleep(delay, stop.signal).catch(() => {});
        dirty = true;
      }
    }
  };

  const reader = read();
  const looper = loop();
  let closed: Promise<void> | undefined;
  return {
    get last() {
      return last;
    },
    get reconciles() {
      return reconciles;
    },
    close() {
      closed ??= (async () => {
        ctx.signal.removeEventListener("abort", onAbort);
        stop.abort();
        await syncer.close();
        await Promise.allSettled([reader, looper]);
      })();
      return closed;
    },
  };
}
