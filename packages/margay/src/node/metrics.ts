/**
 * The agent's metrics registry (one per agent, never prom-client's global one, so tests and several
 * agents in one process never collide), with the process metrics and the IPAM per-pool gauges. Every
 * other part registers its own metrics on the same registry (`ctx.metrics`).
 *
 * @packageDocumentation
 */
import type { Logger } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import {
  allocationNode,
  affinityNode,
  type Ipam,
  type IpamBlockObject,
  IpamKind,
  type PoolUtilisation,
} from "@margay/ipam";
import { collectDefaultMetrics, Gauge, Registry } from "prom-client";
import type { Health } from "./context.js";

/** Prefix of the process metrics (`margay_agent_process_cpu_seconds_total`, ...). */
export const AGENT_METRICS_PREFIX = "margay_agent_";

/**
 * A fresh registry with the default process and Node.js runtime metrics, prefixed `margay_agent_`
 * (another daemon, e.g. margay-kube-controllers, passes its own prefix).
 */
export function createAgentMetrics(prefix: string = AGENT_METRICS_PREFIX): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

/** One pool's figures, as the `margay_ipam_pool_addresses` gauge exports them. */
export interface PoolAddressFigures {
  readonly pool: string;
  /** Addresses in the pool (its CIDR size; IPv6 pools beyond 2^53 lose precision). */
  readonly capacity: number;
  /** Addresses allocated. */
  readonly inUse: number;
  /** Allocated addresses whose workload runs on another node than the block's affine node. */
  readonly borrowed: number;
}

/**
 * Per-pool figures from IPAM's utilisation report and the blocks: a borrowed address is one allocated
 * in a block affine to one node for a workload on another (Calico's "borrowed" IPs).
 */
export function poolAddressFigures(
  pools: readonly PoolUtilisation[],
  blocks: readonly IpamBlockObject[],
): PoolAddressFigures[] {
  const borrowedByBlock = new Map<string, number>();
  for (const b of blocks) {
    const owner = affinityNode(b.spec.affinity);
    let n = 0;
    for (const idx of b.spec.allocations) {
      if (idx === null) continue;
      const node = allocationNode(b.spec, b.spec.attributes[idx]);
      // An unaffine block lends every address it holds; an allocation without a node is not counted.
      if (node !== undefined && node !== owner) n++;
    }
    borrowedByBlock.set(b.spec.cidr, n);
  }
  return pools.map((p) => ({
    pool: p.name,
    capacity: Number(p.capacity),
    inUse: p.inUse,
    borrowed: p.blocks.reduce((sum, b) => sum + (borrowedByBlock.get(b.cidr) ?? 0), 0),
  }));
}

/** Options of {@link startIpamMetrics}. */
export interface IpamMetricsOptions {
  readonly registry: Registry;
  readonly datastore: Datastore;
  readonly ipam: Ipam;
  /** Refresh period, ms. */
  readonly intervalMs: number;
  readonly logger: Logger;
  /** Stops the refresh. */
  readonly signal?: AbortSignal | undefined;
}

/** The running refresher. */
export interface IpamMetrics {
  /** Recomputes the gauges now (the periodic refresh calls this). */
  refresh(): Promise<void>;
  /** Stops the refresh. Idempotent. */
  close(): void;
}

/**
 * Registers `margay_ipam_pool_addresses{pool,state}` (state `capacity`, `in_use`, `borrowed`) and
 * refreshes it every `intervalMs` from the datastore: one utilisation report and one list of blocks,
 * cheap next to a scrape interval. A pool that disappears disappears from the gauge.
 */
export function startIpamMetrics(options: IpamMetricsOptions): IpamMetrics {
  const gauge = new Gauge({
    name: "margay_ipam_pool_addresses",
    help: "Addresses of each IP pool: capacity, in_use (allocated) and borrowed (allocated in a block affine to another node)",
    labelNames: ["pool", "state"] as const,
    registers: [options.registry],
  });
  const log = options.logger;
  let running: Promise<void> | undefined;
  const refresh = () => {
    running ??= (async () => {
      try {
        const [pools, blocks] = await Promise.all([
          options.ipam.utilisation({ ...(options.signal ? { signal: options.signal } : {}) }),
          options.datastore.list<IpamBlockObject>(IpamKind.Block),
        ]);
        gauge.reset();
        for (const f of poolAddressFigures(pools, blocks.items)) {
          gauge.set({ pool: f.pool, state: "capacity" }, f.capacity);
          gauge.set({ pool: f.pool, state: "in_use" }, f.inUse);
          gauge.set({ pool: f.pool, state: "borrowed" }, f.borrowed);
        }
      } catch (e) {
        if (options.signal?.aborted) return;
        // Stale figures are better than none; the datastore's health is reported elsewhere.
        log.warn({ err: e }, "IPAM metrics refresh failed");
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  const timer = setInterval(() => void refresh(), options.intervalMs);
  timer.unref();
  const close = () => clearInterval(timer);
  options.signal?.addEventListener("abort", close, { once: true });
  void refresh();
  return { refresh, close };
}

/**
 * Registers `margay_agent_info{version}` (always 1) and `margay_agent_component_ready{component}` /
 * `margay_agent_component_live{component}` (1 or 0, read from `health` at each scrape; one series per
 * component, a handful), so an alert can name the component that is not ready. `prefix` replaces
 * `margay_agent_` for another daemon.
 */
export function registerHealthMetrics(
  registry: Registry,
  health: Health,
  version: string,
  prefix: string = AGENT_METRICS_PREFIX,
): void {
  new Gauge({
    name: `${prefix}info`,
    help: "The daemon's version (value always 1)",
    labelNames: ["version"] as const,
    registers: [registry],
  }).set({ version }, 1);
  const probe = (name: string, help: string, pick: (c: { live: boolean; ready: boolean }) => boolean) =>
    new Gauge({
      name,
      help,
      labelNames: ["component"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [component, c] of Object.entries(health.snapshot().components))
          this.set({ component }, pick(c) ? 1 : 0);
      },
    });
  probe(`${prefix}component_ready`, "1 when the component is ready, else 0", (c) => c.ready);
  probe(`${prefix}component_live`, "1 when the component is live, else 0", (c) => c.live);
}
