/**
 * Keeps the workload MTU in step with the IPPools while the agent runs (felix recomputes its MTU file for
 * the CNI plugin the same way): the MTU is the underlay interface's minus the largest overhead among the
 * encapsulations the pools use now, so a pool switched to VXLAN gives the pods added afterwards the VXLAN
 * MTU. Pods that exist keep theirs (their veths are not touched). An explicit `config.mtu` (`MARGAY_MTU`)
 * wins and never changes. A change is logged at info, exported as the `margay_agent_workload_mtu_bytes`
 * gauge and announced to the listeners (the status reporter rewrites NodeStatus).
 *
 * @packageDocumentation
 */
import type { IPPool } from "@margay/api";
import { createSyncer, type Syncer } from "@margay/datastore";
import { Gauge } from "prom-client";
import { messageOf } from "./agent-error.js";
import { deriveMtu, poolEncapsulations } from "./config/mtu.js";
import type { AgentConfig } from "./config/types.js";
import type { AgentContext, NodeAddresses } from "./context.js";

/** Name of the gauge holding the MTU new workloads get. */
export const WORKLOAD_MTU_METRIC = "margay_agent_workload_mtu_bytes";

/** The MTU new workloads get for `pools` (the enabled pools' encapsulations; `config.mtu` wins). */
export function workloadMtuFor(
  config: AgentConfig,
  addresses: Pick<NodeAddresses, "interfaceMtu">,
  pools: Iterable<IPPool>,
): number {
  return deriveMtu(config, addresses, poolEncapsulations(config, pools));
}

/** Options of {@link startWorkloadMtuFollower}. */
export interface WorkloadMtuFollowerOptions {
  /** The node's addresses (the underlay interface's MTU). */
  readonly addresses: Pick<NodeAddresses, "interfaceMtu">;
  /** The pools read at startup: the MTU until the follower's syncer is in sync. */
  readonly pools: readonly IPPool[];
}

/** A running follower. */
export interface WorkloadMtuFollower {
  /** The MTU new workloads get now. */
  readonly current: number;
  /** Calls `listener(mtu, previous)` after each change. Returns an unsubscribe function. */
  onChange(listener: (mtu: number, previous: number) => void): () => void;
  /** Stops following (the MTU stays as it is). Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts following the IPPools of `ctx.datastore`; the MTU is recomputed after every batch of pool
 * changes once the pools are listed. The gauge is registered on `ctx.metrics`.
 */
export function startWorkloadMtuFollower(
  ctx: Pick<AgentContext, "config" | "datastore" | "logger" | "metrics" | "health" | "signal">,
  options: WorkloadMtuFollowerOptions,
): WorkloadMtuFollower {
  const log = ctx.logger.child({ component: "mtu" });
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  if (ctx.signal.aborted) stop.abort();
  else ctx.signal.addEventListener("abort", onAbort, { once: true });

  let current = workloadMtuFor(ctx.config, options.addresses, options.pools);
  const listeners = new Set<(mtu: number, previous: number) => void>();
  new Gauge({
    name: WORKLOAD_MTU_METRIC,
    help: "The veth MTU new workloads get (underlay MTU minus the largest encapsulation overhead in use)",
    registers: [ctx.metrics],
    collect() {
      this.set(current);
    },
  });
  log.info(
    {
      mtu: current,
      interfaceMtu: options.addresses.interfaceMtu,
      configured: ctx.config.mtu !== undefined,
      encapsulations: poolEncapsulations(ctx.config, options.pools),
    },
    "workload MTU",
  );

  const pools = new Map<string, IPPool>();
  let synced = false;
  const recompute = () => {
    const encapsulations = poolEncapsulations(ctx.config, pools.values());
    const next = deriveMtu(ctx.config, options.addresses, encapsulations);
    if (next === current) return;
    const previous = current;
    current = next;
    log.info({ mtu: next, previous, encapsulations }, "workload MTU changed; new workloads get it");
    for (const l of [...listeners]) {
      try {
        l(next, previous);
      } catch (e) {
        log.warn({ err: e }, "a workload MTU listener failed");
      }
    }
  };

  const syncer: Syncer<IPPool> = createSyncer<IPPool>({
    datastore: ctx.datastore,
    kinds: ["IPPool"],
    logger: ctx.logger,
    signal: stop.signal,
  });
  const reader = (async () => {
    try {
      for await (const batch of syncer) {
        for (const ev of batch) {
          if (ev.type === "in-sync") synced = true;
          else if (ev.type === "upsert") pools.set(ev.key.name, ev.object);
          else pools.delete(ev.key.name);
        }
        if (synced) recompute();
      }
    } catch (e) {
      if (stop.signal.aborted) return;
      // Pods still get an MTU (the last one); it no longer follows the pools.
      log.error({ err: e }, "IPPool syncer stopped; the workload MTU no longer follows the pools");
      ctx.health.report("mtu", {
        live: true,
        ready: true,
        reason: `the workload MTU no longer follows the pools: ${messageOf(e)}`,
      });
    }
  })();

  let closed: Promise<void> | undefined;
  return {
    get current() {
      return current;
    },
    onChange(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    close() {
      closed ??= (async () => {
        ctx.signal.removeEventListener("abort", onAbort);
        stop.abort();
        await syncer.close();
        await reader;
      })();
      return closed;
    },
  };
}
