/**
 * The agent's dataplane pipeline: one datastore syncer → the policy calc graph and the route calculator →
 * one driver, Felix's loop in one place. Every syncer batch is fed into both calculators at once; the
 * driver receives their coalesced output one batch at a time (never two applies at once), so a burst of
 * changes during a slow apply becomes one batch. A batch the driver rejects is retried with back-off
 * (merged with what arrived meanwhile) and nothing counts as programmed (waiters, `routes()`, listeners)
 * until an apply succeeded.
 *
 * @packageDocumentation
 */
import { type BackoffOptions, createBackoff, type Logger, sleep } from "@margay/api";
import type { DataplaneUpdate, PolicyUpdate, RouteSideUpdate } from "@margay/dataplane-contract";
import {
  createSyncer,
  type Syncer,
  type SyncerEvent,
  type SyncerStatus,
  SyncerState,
} from "@margay/datastore";
import { createCalcGraph } from "@margay/policy";
import { createRouteCalculator, type RoutingChange, type RoutingUpdate } from "@margay/routing";
import { type ForeignChainFinding, isDataplaneError } from "@margay/dataplane";
import type { AgentContext, DataplanePipeline, NodeAddresses } from "../context.js";
import { type AgentDriver, createAgentDriver } from "./driver.js";
import { PipelineError, PipelineErrorCode } from "./errors.js";
import { createForeignRulesMonitor, type ForeignRulesMonitor } from "./foreign-rules.js";
import { createPipelineInputs, endpointKey, PIPELINE_KINDS } from "./inputs.js";
import { createPipelineMetrics } from "./metrics.js";
import { routeSideKey, sortRouteSide } from "./route-set.js";
import { createEndpointWaiters, type EndpointChange } from "./waiters.js";

/** Options of {@link startDataplanePipeline}. */
export interface DataplanePipelineOptions {
  /** The addresses the agent chose: this node's underlay until its Node resource names one. */
  readonly addresses?: NodeAddresses | undefined;
  /** Veth and tunnel MTU (the VXLAN device gets it when the pipeline creates the driver). */
  readonly mtu?: number | undefined;
  /** The driver to run. Default: {@link createAgentDriver} for `ctx.config`. Closed by the pipeline. */
  readonly driver?: AgentDriver | undefined;
  /** Back-off between retries of a rejected batch. Default 100 ms doubling to 30 s, ±50 % jitter. */
  readonly retry?: BackoffOptions | undefined;
  /** The syncer's back-off between failed lists or watch restarts (its default when unset). */
  readonly syncerRetry?: BackoffOptions | undefined;
  /**
   * How often the datastore is probed (one small read) to notice an outage the syncer does not report,
   * ms. Default 5 000.
   */
  readonly datastoreProbeMs?: number | undefined;
  /** How long `close()` lets an apply in flight finish before aborting it, ms. Default 10 000. */
  readonly closeTimeoutMs?: number | undefined;
  /**
   * Period of the foreign nftables rules check (drivers with `foreignRules`), ms; it first runs at the
   * first in-sync. Default 60 000.
   */
  readonly foreignRulesIntervalMs?: number | undefined;
}

/** What the pipeline is doing, for the status reporter and tests. */
export interface DataplanePipelineStatus {
  /** The first in-sync has been applied. */
  readonly inSync: boolean;
  /** The last apply failed (its message), undefined after a success. */
  readonly lastApplyError: string | undefined;
  /** Applies that succeeded / failed since start. */
  readonly applies: number;
  readonly applyFailures: number;
  /** The syncer's state. */
  readonly syncer: SyncerStatus;
  /**
   * Remote routes not programmed, by destination: the route calculator's (a VXLAN route to a node
   * without a VTEP, a node without an address) and, after each applied batch, the driver's (a flat next
   * hop the kernel has no route to), sorted by destination.
   */
  readonly unresolvedRoutes: readonly PipelineUnresolvedRoute[];
  /**
   * Foreign nftables base chains that can drop traffic before ours (last check; empty before the first
   * in-sync or when the driver cannot tell). Reported only: they never make the node unready.
   */
  readonly foreignRules: readonly ForeignChainFinding[];
}

/** A remote route the pipeline could not have programmed. */
export interface PipelineUnresolvedRoute {
  /** Destination CIDR. */
  readonly dst: string;
  /** What is missing (`no-vtep`, `no-node-address`, ...) or the driver's why. */
  readonly reason: string;
  /** The node the route leads to, when known. */
  readonly node?: string | undefined;
  /** Who left it out: the route calculator or the driver. */
  readonly source: "calculator" | "driver";
}

/** The running pipeline: the {@link DataplanePipeline} contract plus its driver and status. */
export interface RunningDataplanePipeline extends DataplanePipeline {
  /** The driver the pipeline feeds. */
  readonly driver: AgentDriver;
  /** Current status. */
  status(): DataplanePipelineStatus;
}

const DEFAULT_RETRY: BackoffOptions = { initialMs: 100, maxMs: 30_000, jitter: 0.5 };
/** Datastore probe period while it is reported unavailable, and each probe's time limit. */
const DATASTORE_DOWN_PROBE_MS = 1_000;
const DATASTORE_PROBE_TIMEOUT_MS = 5_000;
/** How long `close()` still waits for an apply it aborted. */
const ABORT_GRACE_MS = 1_000;

/** A batch as built: what it carries, so a rejected one can be put back and a good one accounted. */
interface Batch {
  readonly policy: PolicyUpdate[];
  readonly routes: RoutingUpdate[];
  readonly inSync: boolean;
  /** True when `routes` is the calculator's whole output (the first batch). */
  readonly full: boolean;
  readonly endpoints: Map<string, EndpointChange>;
  readonly deliveries: Delivery[];
}

interface Delivery {
  /** performance.now() when the syncer handed the changes over. */
  readonly at: number;
  readonly count: number;
}

/**
 * Starts the pipeline: creates the driver unless one is given, starts the syncer over
 * {@link PIPELINE_KINDS} and begins applying after the syncer's in-sync. Health components `dataplane`
 * and `datastore` are reported on `ctx.health`; metrics registered on `ctx.metrics`.
 */
export async function startDataplanePipeline(
  ctx: AgentContext,
  options: DataplanePipelineOptions = {},
): Promise<RunningDataplanePipeline> {
  const driver = options.driver ?? (await createAgentDriver(ctx, { mtu: options.mtu }));
  return new Pipeline(ctx, driver, options);
}

class Pipeline implements RunningDataplanePipeline {
  readonly driver: AgentDriver;
  readonly #ctx: AgentContext;
  readonly #log: Logger;
  readonly #nodeName: string;
  readonly #graph: ReturnType<typeof createCalcGraph>;
  readonly #routes: ReturnType<typeof createRouteCalculator>;
  readonly #inputs: ReturnType<typeof createPipelineInputs>;
  readonly #metrics: ReturnType<typeof createPipelineMetrics>;
  readonly #waiters = createEndpointWaiters();
  readonly #syncer: Syncer;
  readonly #stop = new AbortController();
  readonly #applyAbort = new AbortController();
  readonly #backoff: ReturnType<typeof createBackoff>;
  readonly #closeTimeoutMs: number;
  readonly #onCtxAbort = () => void this.close();
  /** Backend `none`: the underlay routes between hosts; we program no remote-block route. */
  readonly #crossHost: boolean;

  // Accumulated since the last batch was built.
  #pendingRoutes = new Map<string, RoutingUpdate>();
  #pendingEndpoints = new Map<string, EndpointChange>();
  #pendingDeliveries: Delivery[] = [];
  /** Policy updates of a rejected batch, owed to the driver ahead of anything newer. */
  #owedPolicy: PolicyUpdate[] = [];
  #owedInSync = false;
  #dirty = false;
  /** Deliveries of the batch the driver is applying (still lagging until it returns). */
  #inFlight: readonly Delivery[] = [];

  #barrier = false;
  #inSync = false;
  #lastApplyError: string | undefined;
  /** The driver's unresolved remote routes as of the last applied batch (drivers that report them). */
  #driverUnresolved: ReadonlyMap<string, string> = new Map();
  #applies = 0;
  #applyFailures = 0;
  readonly #programmed = new Map<string, RoutingUpdate>();
  readonly #listeners = new Map<number, { fn: (u: readonly RouteSideUpdate[]) => void; primed: boolean }>();
  #nextListener = 0;

  #wake: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  readonly #reader: Promise<void>;
  readonly #applier: Promise<void>;
  /** The syncer's last error already reported (the syncer keeps reporting it after a recovery). */
  #seenError: unknown;
  /** The datastore is reported unavailable (until a probe read succeeds). */
  #datastoreDown = false;
  /** Route updates the driver refused as malformed (exactly as sent): never sent again. */
  readonly #quarantine = new Set<string>();
  #wakeMonitor: (() => void) | undefined;
  /** The syncer ended for good (closed datastore, unreadable kind). */
  #syncerStopped = false;
  readonly #datastoreProbeMs: number;
  readonly #monitor: Promise<void>;
  readonly #foreign: ForeignRulesMonitor | undefined;

  constructor(ctx: AgentContext, driver: AgentDriver, options: DataplanePipelineOptions) {
    this.#ctx = ctx;
    this.driver = driver;
    this.#nodeName = ctx.config.nodeName;
    this.#crossHost = ctx.config.networkingBackend !== "none";
    this.#log = ctx.logger.child({ component: "dataplane-pipeline" });
    this.#closeTimeoutMs = options.closeTimeoutMs ?? 10_000;
    this.#datastoreProbeMs = options.datastoreProbeMs ?? 5_000;
    this.#backoff = createBackoff({ ...DEFAULT_RETRY, ...options.retry });
    const readForeign = driver.foreignRules?.bind(driver);
    this.#foreign =
      readForeign === undefined
        ? undefined
        : createForeignRulesMonitor({
            read: readForeign,
            logger: this.#log,
            intervalMs: options.foreignRulesIntervalMs,
          });
    const failsafe = ctx.config.failsafe;
    this.#graph = createCalcGraph({
      nodeName: this.#nodeName,
      logger: ctx.logger,
      // Unset: the calc graph's defaults, Calico's failsafe ports.
      ...(failsafe === undefined
        ? {}
        : { failsafeInbound: failsafe.inbound, failsafeOutbound: failsafe.outbound }),
    });
    this.#routes = createRouteCalculator({ nodeName: this.#nodeName });
    this.#inputs = createPipelineInputs({
      nodeName: this.#nodeName,
      addresses: options.addresses,
      calcGraph: this.#graph,
      routes: this.#routes,
      log: this.#log,
    });
    this.#metrics = createPipelineMetrics(ctx.metrics, () => this.#lagSeconds());
    this.#metrics.inSync.set(0);
    ctx.health.report("dataplane", {
      live: true,
      ready: false,
      reason: "dataplane not in sync: waiting for the datastore's initial state",
    });
    ctx.health.report("datastore", { live: true, ready: false, reason: "waiting for the datastore" });
    this.#syncer = createSyncer({
      datastore: ctx.datastore,
      kinds: PIPELINE_KINDS,
      logger: ctx.logger,
      signal: this.#stop.signal,
      retry: options.syncerRetry,
      onStatus: (s) => this.#onSyncerStatus(s),
    });
    this.#log.info(
      { node: this.#nodeName, kinds: [...PIPELINE_KINDS], addresses: options.addresses, mtu: options.mtu },
      "dataplane pipeline starting",
    );
    this.#reader = this.#read();
    this.#applier = this.#applyLoop();
    this.#monitor = this.#monitorDatastore();
    if (ctx.signal.aborted) void this.close();
    else ctx.signal.addEventListener("abort", this.#onCtxAbort, { once: true });
  }

  get inSync(): boolean {
    return this.#inSync;
  }

  status(): DataplanePipelineStatus {
    return {
      inSync: this.#inSync,
      lastApplyError: this.#lastApplyError,
      applies: this.#applies,
      applyFailures: this.#applyFailures,
      syncer: this.#syncer.status,
      unresolvedRoutes: this.#unresolved(),
      foreignRules: this.#foreign?.findings() ?? [],
    };
  }

  #unresolved(): PipelineUnresolvedRoute[] {
    const out: PipelineUnresolvedRoute[] = this.#routes.unresolved().map((u) => ({
      dst: u.dst,
      reason: u.reason,
      ...(u.node === undefined ? {} : { node: u.node }),
      source: "calculator" as const,
    }));
    for (const [dst, why] of this.#driverUnresolved) out.push({ dst, reason: why, source: "driver" });
    return out.sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0));
  }

  waitForEndpoint(
    key: string,
    revision: string,
    options?: { readonly deleted?: boolean; readonly signal?: AbortSignal },
  ): Promise<void> {
    return this.#waiters.wait(key, revision, options);
  }

  learned(changes: readonly RoutingChange[]): void {
    if (this.#closing !== undefined) return;
    const diff = this.#inputs.learned(changes);
    this.#addRoutes(diff);
    this.#kick();
  }

  onRoutes(listener: (updates: readonly RouteSideUpdate[]) => void): () => void {
    const id = this.#nextListener++;
    const entry = { fn: listener, primed: false };
    this.#listeners.set(id, entry);
    if (this.#inSync) {
      // After the caller has its unsubscribe function; a batch applied before then primes it instead.
      queueMicrotask(() => {
        if (!entry.primed && this.#listeners.has(id)) this.#prime(entry);
      });
    }
    return () => {
      this.#listeners.delete(id);
    };
  }

  routes(): ReadonlyMap<string, RouteSideUpdate> {
    return this.#programmed;
  }

  close(options: { readonly teardown?: boolean } = {}): Promise<void> {
    this.#closing ??= this.#shutdown(options.teardown === true);
    return this.#closing;
  }

  // ---- syncer side --------------------------------------------------------------------------------

  async #read(): Promise<void> {
    try {
      for await (const batch of this.#syncer) {
        this.#ingest(batch);
      }
    } catch (e) {
      // The syncer ended for good (a closed datastore, a kind it may not read): the dataplane keeps
      // what it has; the datastore component says why nothing changes any more.
      const message = e instanceof Error ? e.message : String(e);
      this.#log.error({ err: e }, "datastore syncer stopped");
      this.#syncerStopped = true;
      this.#wakeMonitor?.();
      if (this.#closing === undefined) {
        this.#ctx.health.report("datastore", {
          live: false,
          ready: false,
          reason: `datastore syncer stopped: ${message}`,
        });
      }
    }
  }

  #ingest(batch: SyncerEvent[]): void {
    const at = performance.now();
    let changes = 0;
    for (const event of batch) {
      if (event.type === "in-sync") {
        this.#barrier = true;
        this.#graph.markInSync();
        continue;
      }
      changes++;
      this.#metrics.syncerEvents.inc({ kind: event.kind });
      this.#addRoutes(this.#inputs.apply(event));
      if (event.kind === "WorkloadEndpoint") {
        this.#pendingEndpoints.set(endpointKey(event.key.namespace, event.key.name), {
          revision: event.revision,
          deleted: event.type === "delete",
        });
      }
    }
    if (changes > 0) this.#pendingDeliveries.push({ at, count: changes });
    this.#kick();
  }

  #addRoutes(diff: readonly RoutingUpdate[]): void {
    for (const u of diff) {
      const v = this.#crossHost ? u : withoutCrossHost(u);
      this.#pendingRoutes.set(routeSideKey(v), v);
    }
  }

  #onSyncerStatus(s: SyncerStatus): void {
    if (this.#closing !== undefined || s.state === SyncerState.Closed) return;
    if (s.lastError !== undefined && s.lastError !== this.#seenError) {
      this.#seenError = s.lastError;
      // A compacted watch is cured by a relist: routine, not an outage.
      if (s.lastError.code === "compacted") return;
      this.#datastoreDown = true;
      this.#ctx.health.report("datastore", {
        live: true,
        ready: false,
        reason: `datastore unavailable: ${s.lastError.message}`,
      });
      this.#wakeMonitor?.();
      return;
    }
    if (s.state === SyncerState.InSync && !this.#datastoreDown) {
      this.#ctx.health.report("datastore", { live: true, ready: true });
    }
  }

  /**
   * The syncer reports failures but neither recoveries nor a quiet outage (the etcd backend re-dials a
   * broken watch by itself, so a watch just stalls): read one small key range every
   * `datastoreProbeMs` (every second while the datastore is reported unavailable) and report the result.
   */
  async #monitorDatastore(): Promise<void> {
    const stop = this.#stop.signal;
    // After the syncer stopped for good, its report (not live) stands: no probe may overwrite it.
    while (!stop.aborted && !this.#syncerStopped) {
      const wake = new AbortController();
      this.#wakeMonitor = () => wake.abort();
      try {
        await sleep(
          this.#datastoreDown ? DATASTORE_DOWN_PROBE_MS : this.#datastoreProbeMs,
          AbortSignal.any([stop, wake.signal]),
        );
      } catch {
        if (stop.aborted) return;
      }
      this.#wakeMonitor = undefined;
      if (this.#syncerStopped) return;
      try {
        await this.#ctx.datastore.list("Node", {
          namePrefix: this.#nodeName,
          signal: AbortSignal.any([stop, AbortSignal.timeout(DATASTORE_PROBE_TIMEOUT_MS)]),
        });
        if (stop.aborted || this.#closing !== undefined || this.#syncerStopped) return;
        if (this.#datastoreDown && this.#syncer.status.synced) {
          this.#log.info({}, "datastore reachable again");
          this.#datastoreDown = false;
          this.#ctx.health.report("datastore", { live: true, ready: true });
        }
      } catch (e) {
        if (stop.aborted || this.#closing !== undefined || this.#syncerStopped) return;
        const message = e instanceof Error ? e.message : String(e);
        if (!this.#datastoreDown) this.#log.warn({ err: e }, "datastore unreachable");
        this.#datastoreDown = true;
        this.#ctx.health.report("datastore", {
          live: true,
          ready: false,
          reason: `datastore unavailable: ${message}`,
        });
      }
    }
  }

  // ---- driver side --------------------------------------------------------------------------------

  #kick(): void {
    this.#dirty = true;
    this.#wake?.();
  }

  async #applyLoop(): Promise<void> {
    const signal = this.#stop.signal;
    while (!signal.aborted) {
      if (!this.#barrier || !this.#dirty) {
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          if (signal.aborted) resolve();
        });
        this.#wake = undefined;
        continue;
      }
      this.#dirty = false;
      const batch = this.#build();
      const updates: DataplaneUpdate[] = [...batch.policy, ...batch.routes];
      if (batch.inSync) updates.push({ kind: "in-sync" });
      if (updates.length === 0) {
        // Nothing for the driver (e.g. another node's endpoint changed a label no rule selects), and
        // nothing is owed from before: the changes count as programmed.
        this.#succeeded(batch);
        continue;
      }
      const t0 = performance.now();
      this.#inFlight = batch.deliveries;
      try {
        await this.driver.apply(updates, { signal: this.#applyAbort.signal });
        this.#inFlight = [];
        this.#metrics.applySeconds.observe((performance.now() - t0) / 1000);
        this.#succeeded(batch);
      } catch (e) {
        this.#inFlight = [];
        this.#metrics.applySeconds.observe((performance.now() - t0) / 1000);
        if (this.#dropInvalid(batch, e)) {
          // The driver validated the batch and changed nothing: retry at once without the bad update.
          this.#restore(batch);
          this.#dirty = true;
          continue;
        }
        this.#failed(batch, updates.length, e);
        if (signal.aborted) return;
        try {
          await sleep(this.#backoff.next(), signal);
        } catch {
          return;
        }
        this.#dirty = true;
      }
    }
  }

  #build(): Batch {
    const flushed = this.#graph.flush();
    let inSync = this.#owedInSync;
    const policy = this.#owedPolicy;
    for (const u of flushed) {
      if (u.kind === "in-sync") inSync = true;
      else {
        policy.push(u);
        this.#metrics.calcGraphUpdates.inc({ kind: u.kind });
      }
    }
    this.#owedPolicy = [];
    this.#owedInSync = false;
    // Until the first in-sync is applied, the driver gets the calculator's whole output: it subsumes
    // every diff accumulated while the datastore was being listed (or a first batch that was rejected).
    const full = !this.#inSync;
    let routes = full
      ? this.#routes.snapshot().filter((u) => this.#crossHost || !isCrossHost(u))
      : sortRouteSide(this.#pendingRoutes.values());
    if (this.#quarantine.size > 0) routes = routes.filter((u) => !this.#quarantine.has(JSON.stringify(u)));
    this.#pendingRoutes = new Map();
    const endpoints = this.#pendingEndpoints;
    this.#pendingEndpoints = new Map();
    const deliveries = this.#pendingDeliveries;
    this.#pendingDeliveries = [];
    return { policy, routes, inSync, full, endpoints, deliveries };
  }

  #succeeded(batch: Batch): void {
    this.#applies++;
    this.#backoff.reset();
    const firstInSync = batch.inSync && !this.#inSync;
    if (batch.full) this.#programmed.clear();
    for (const u of batch.routes) {
      const key = routeSideKey(u);
      if (u.kind.endsWith("-remove")) this.#programmed.delete(key);
      else this.#programmed.set(key, u);
    }
    if (batch.inSync) this.#inSync = true;
    const done = performance.now();
    for (const d of batch.deliveries) {
      const seconds = (done - d.at) / 1000;
      for (let i = 0; i < d.count; i++) this.#metrics.timeToEnforce.observe(seconds);
    }
    // The Linux driver names the routes it left out of this batch (no kernel route to the next hop).
    const fromDriver = (this.driver as { readonly unresolvedRoutes?: unknown }).unresolvedRoutes;
    this.#driverUnresolved = fromDriver instanceof Map ? new Map(fromDriver) : new Map();
    this.#metrics.unresolvedRoutes.set(this.#routes.unresolved().length);
    if (this.#inSync) {
      this.#metrics.inSync.set(1);
      if (firstInSync || this.#lastApplyError !== undefined) {
        this.#log.info(
          {
            applies: this.#applies,
            routes: this.#programmed.size,
            recovered: this.#lastApplyError !== undefined,
          },
          "dataplane in sync",
        );
      }
      this.#lastApplyError = undefined;
      this.#ctx.health.report("dataplane", { live: true, ready: true });
    }
    if (firstInSync) {
      this.#waiters.markInSync();
      this.#foreign?.start();
    }
    this.#waiters.applied(batch.endpoints);
    if (batch.routes.length > 0 || firstInSync) this.#notify(batch.routes, firstInSync);
  }

  #failed(batch: Batch, size: number, e: unknown): void {
    this.#applyFailures++;
    this.#metrics.applyFailures.inc();
    this.#metrics.inSync.set(0);
    const reason = `dataplane not in sync: ${describeDriverError(e)}`;
    this.#lastApplyError = reason;
    this.#log.error(
      { err: e, updates: size, attempt: this.#backoff.attempts + 1 },
      "dataplane apply failed; retrying",
    );
    this.#ctx.health.report("dataplane", { live: true, ready: false, reason });
    this.#restore(batch);
  }

  /**
   * A batch refused as malformed (`invalid-update` with the index of the update at fault) would be
   * refused forever: that one update is dropped (logged, counted) so everything else is programmed. The
   * calculators validate their inputs, so this is the last guard against a bug, not a normal path.
   */
  #dropInvalid(batch: Batch, e: unknown): boolean {
    if (!isDataplaneError(e, "invalid-update")) return false;
    const index = e.details.index;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0) return false;
    let dropped: DataplaneUpdate | undefined;
    if (index < batch.policy.length) dropped = batch.policy.splice(index, 1)[0];
    else if (index - batch.policy.length < batch.routes.length) {
      const route = batch.routes.splice(index - batch.policy.length, 1)[0];
      // A full batch is rebuilt from the calculator's snapshot, which would bring the route back.
      if (route !== undefined) this.#quarantine.add(JSON.stringify(route));
      dropped = route;
    }
    if (dropped === undefined) return false;
    this.#metrics.droppedUpdates.inc();
    this.#log.error(
      {
        err: e,
        update: dropped.kind,
        id: (dropped as { id?: unknown }).id,
        dst: (dropped as { dst?: unknown }).dst,
      },
      "dataplane update rejected as invalid; dropped",
    );
    return true;
  }

  /** Puts a batch that was not applied back under anything that arrived meanwhile. */
  #restore(batch: Batch): void {
    // Put the batch back under anything that arrived meanwhile: policy updates keep their order ahead of
    // newer ones, a route key the calculator has since changed keeps its newer value.
    this.#owedPolicy = [...batch.policy, ...this.#owedPolicy];
    this.#owedInSync ||= batch.inSync;
    if (!batch.full) {
      for (const u of batch.routes) {
        const key = routeSideKey(u);
        if (!this.#pendingRoutes.has(key)) this.#pendingRoutes.set(key, u);
      }
    }
    for (const [key, change] of batch.endpoints) {
      if (!this.#pendingEndpoints.has(key)) this.#pendingEndpoints.set(key, change);
    }
    this.#pendingDeliveries = [...batch.deliveries, ...this.#pendingDeliveries];
  }

  #notify(routes: readonly RoutingUpdate[], full: boolean): void {
    for (const entry of this.#listeners.values()) {
      if (!entry.primed || full) {
        this.#prime(entry);
        continue;
      }
      this.#call(entry.fn, routes);
    }
  }

  #prime(entry: { fn: (u: readonly RouteSideUpdate[]) => void; primed: boolean }): void {
    entry.primed = true;
    this.#call(entry.fn, [...this.#programmed.values()]);
  }

  #call(fn: (u: readonly RouteSideUpdate[]) => void, updates: readonly RouteSideUpdate[]): void {
    try {
      fn(updates);
    } catch (e) {
      this.#log.error({ err: e }, "route listener failed");
    }
  }

  #lagSeconds(): number {
    let oldest: number | undefined;
    for (const d of [...this.#inFlight, ...this.#pendingDeliveries]) {
      if (oldest === undefined || d.at < oldest) oldest = d.at;
    }
    return oldest === undefined ? 0 : Math.max(0, (performance.now() - oldest) / 1000);
  }

  // ---- stop ---------------------------------------------------------------------------------------

  async #shutdown(teardown: boolean): Promise<void> {
    this.#ctx.signal.removeEventListener("abort", this.#onCtxAbort);
    this.#log.info({ teardown }, "dataplane pipeline stopping");
    this.#stop.abort();
    this.#foreign?.close();
    this.#wake?.();
    this.#waiters.close(new PipelineError(PipelineErrorCode.Closed, "dataplane pipeline closed"));
    await this.#syncer.close().catch((e: unknown) => this.#log.warn({ err: e }, "syncer close failed"));
    await this.#reader;
    await this.#monitor;
    // An apply in flight may finish (the kernel then matches what was computed); a stuck one is aborted,
    // and a driver that ignores the abort is not waited for (closing it below ends its work).
    if (!(await settlesWithin(this.#applier, this.#closeTimeoutMs))) {
      this.#applyAbort.abort();
      if (!(await settlesWithin(this.#applier, ABORT_GRACE_MS))) {
        this.#log.warn(
          { timeoutMs: this.#closeTimeoutMs },
          "dataplane apply still running at close; not waiting",
        );
      }
    }
    await this.driver.close().catch((e: unknown) => this.#log.warn({ err: e }, "driver close failed"));
    if (teardown) {
      if (this.driver.teardown === undefined) {
        this.#log.warn({}, "the dataplane driver cannot tear down; its state is left in place");
      } else {
        await this.driver.teardown();
        this.#log.info({}, "dataplane torn down");
      }
    }
    this.#inSync = false;
    this.#metrics.inSync.set(0);
    this.#ctx.health.report("dataplane", { live: true, ready: false, reason: "dataplane pipeline stopped" });
    this.#log.info({ teardown }, "dataplane pipeline stopped");
  }
}

/** A route to another host (remote block, borrowed address, learned prefix). */
function isCrossHost(u: RoutingUpdate): boolean {
  return u.kind === "route-update" && u.type === "remote-block";
}

/**
 * For backend `none`: a remote-block route becomes its removal (the destination may have been a local
 * block before); everything else passes.
 */
function withoutCrossHost(u: RoutingUpdate): RoutingUpdate {
  return u.kind === "route-update" && u.type === "remote-block" ? { kind: "route-remove", dst: u.dst } : u;
}

/** True when `p` settles within `ms`. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The driver's message plus, for a rejected nftables transaction, nft's first line of complaint. */
function describeDriverError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const stderr = (e as { details?: { stderr?: unknown } }).details?.stderr;
  const first =
    typeof stderr === "string"
      ? stderr
          .split("\n")
          .map((l) => l.trim())
          .find((l) => l !== "")
      : undefined;
  return first === undefined ? e.message : `${e.message}: ${first}`;
}
