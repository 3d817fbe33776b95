/**
 * The workload API's metrics on the agent's registry: add and del duration by step, requests by verb and
 * result.
 *
 * @packageDocumentation
 */
import { Counter, Histogram, type Registry } from "prom-client";

/** Steps of an add, as the `step` label of `margay_workload_add_seconds`. */
export type AddStep = "ipam" | "plumb" | "endpoint-write" | "programmed" | "total";

/**
 * Steps of a del, as the `step` label of `margay_workload_del_seconds`: finding and deleting the
 * endpoint, removing the veth, releasing the addresses, and the whole del (after its lock is taken).
 */
export type DelStep = "endpoint" | "veth" | "ipam" | "total";

/** The metrics the workload API records. */
export interface WorkloadMetrics {
  /** Records one step of one add. */
  addStep(step: AddStep, seconds: number): void;
  /** Records one step of one del. */
  delStep(step: DelStep, seconds: number): void;
  /** Counts one request; `result` is `ok` or the error code (a bounded set). */
  request(verb: string, result: string): void;
}

const ADD_SECONDS = "margay_workload_add_seconds";
const DEL_SECONDS = "margay_workload_del_seconds";
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const REQUESTS = "margay_workload_requests_total";

/** Registers (or reuses, when already registered) the workload API's metrics on `registry`. */
export function createWorkloadMetrics(registry: Registry): WorkloadMetrics {
  const hist =
    (registry.getSingleMetric(ADD_SECONDS) as Histogram<"step"> | undefined) ??
    new Histogram({
      name: ADD_SECONDS,
      help: "Duration of workload add requests, by step (ipam, plumb, endpoint-write, programmed, total)",
      labelNames: ["step"],
      buckets: BUCKETS,
      registers: [registry],
    });
  const delHist =
    (registry.getSingleMetric(DEL_SECONDS) as Histogram<"step"> | undefined) ??
    new Histogram({
      name: DEL_SECONDS,
      help: "Duration of workload del requests, by step (endpoint, veth, ipam, total)",
      labelNames: ["step"],
      buckets: BUCKETS,
      registers: [registry],
    });
  const counter =
    (registry.getSingleMetric(REQUESTS) as Counter<"verb" | "result"> | undefined) ??
    new Counter({
      name: REQUESTS,
      help: "Workload API requests, by verb and result (ok or the error code)",
      labelNames: ["verb", "result"],
      registers: [registry],
    });
  return {
    addStep: (step, seconds) => hist.observe({ step }, seconds),
    delStep: (step, seconds) => delHist.observe({ step }, seconds),
    request: (verb, result) => counter.inc({ verb, result }),
  };
}
