/**
 * The pipeline's Prometheus metrics, registered on the agent's registry (never the global default, so
 * tests and several agents in one process do not collide; a second pipeline on one registry reuses them).
 *
 * @packageDocumentation
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Buckets from 1 ms to 30 s: an apply is milliseconds, a stuck transaction tens of seconds. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The metrics the pipeline records. */
export interface PipelineMetrics {
  readonly timeToEnforce: Histogram;
  readonly applySeconds: Histogram;
  readonly applyFailures: Counter;
  readonly droppedUpdates: Counter;
  readonly calcGraphUpdates: Counter<"kind">;
  readonly syncerEvents: Counter<"kind">;
  readonly inSync: Gauge;
  readonly unresolvedRoutes: Gauge;
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

/**
 * Registers (or finds) the pipeline's metrics on `registry`. `lagSeconds` is read at scrape time: the age
 * of the oldest change the syncer delivered that the driver has not applied yet (0 when caught up).
 */
export function createPipelineMetrics(registry: Registry, lagSeconds: () => number): PipelineMetrics {
  const registers = [registry];
  let source = lagSources.get(registry);
  if (source === undefined) {
    source = { current: lagSeconds };
    lagSources.set(registry, source);
  }
  source.current = lagSeconds;
  const lagSource = source;
  metric(
    registry,
    "margay_syncer_lag_seconds",
    () =>
      new Gauge({
        name: "margay_syncer_lag_seconds",
        help:
          "Age of the oldest datastore change the syncer delivered that the dataplane has not programmed yet " +
          "(0 when caught up). Measured from syncer delivery: etcd events carry no timestamp.",
        registers,
        collect() {
          this.set(lagSource.current());
        },
      }),
  );
  return {
    timeToEnforce: metric(
      registry,
      "margay_time_to_enforce_seconds",
      () =>
        new Histogram({
          name: "margay_time_to_enforce_seconds",
          help:
            "Time from the syncer delivering a datastore change to the dataplane driver finishing the apply " +
            "that programmed it. Measured from syncer delivery, not from the write: etcd events carry no " +
            "timestamp.",
          buckets: LATENCY_BUCKETS,
          registers,
        }),
    ),
    applySeconds: metric(
      registry,
      "margay_dataplane_apply_seconds",
      () =>
        new Histogram({
          name: "margay_dataplane_apply_seconds",
          help: "Duration of one dataplane driver apply (one coalesced batch), failed ones included.",
          buckets: LATENCY_BUCKETS,
          registers,
        }),
    ),
    applyFailures: metric(
      registry,
      "margay_dataplane_apply_failures_total",
      () =>
        new Counter({
          name: "margay_dataplane_apply_failures_total",
          help: "Dataplane batches the driver rejected (each is retried with back-off).",
          registers,
        }),
    ),
    droppedUpdates: metric(
      registry,
      "margay_dataplane_updates_dropped_total",
      () =>
        new Counter({
          name: "margay_dataplane_updates_dropped_total",
          help: "Updates the driver refused as malformed and the pipeline dropped so the rest could be programmed.",
          registers,
        }),
    ),
    calcGraphUpdates: metric(
      registry,
      "margay_calc_graph_updates_total",
      () =>
        new Counter({
          name: "margay_calc_graph_updates_total",
          help: "Updates the policy calculation graph emitted towards the dataplane, by update kind.",
          labelNames: ["kind"] as const,
          registers,
        }),
    ),
    syncerEvents: metric(
      registry,
      "margay_syncer_events_total",
      () =>
        new Counter({
          name: "margay_syncer_events_total",
          help: "Upserts and deletes the datastore syncer delivered to the pipeline, by resource kind.",
          labelNames: ["kind"] as const,
          registers,
        }),
    ),
    inSync: metric(
      registry,
      "margay_dataplane_in_sync",
      () =>
        new Gauge({
          name: "margay_dataplane_in_sync",
          help: "1 when the dataplane has applied the datastore's state and its last apply succeeded, else 0.",
          registers,
        }),
    ),
    unresolvedRoutes: metric(
      registry,
      "margay_routes_unresolved",
      () =>
        new Gauge({
          name: "margay_routes_unresolved",
          help: "Destinations the route calculator cannot route yet (unknown node, missing VTEP, ...).",
          registers,
        }),
    ),
  };
}

// The gauge's collect() is created once per registry but must read the newest pipeline's lag.
const lagSources = new WeakMap<Registry, { current: () => number }>();
