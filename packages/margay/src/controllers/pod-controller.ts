/**
 * The pod controller (Calico kube-controllers' `workloadendpoint` controller in etcd mode): keeps the
 * labels, service account and Kubernetes profiles of EXISTING WorkloadEndpoints equal to their pods'. It
 * never creates nor deletes an endpoint: the agent writes a pod's endpoint at CNI ADD and removes it at
 * DEL; this controller only follows label and service-account changes of running pods, so a label change
 * changes the pod's policy within a second.
 *
 * Two inputs, one work queue keyed by pod (`namespace/name`):
 * - a pod informer whose cache holds slimmed pods ({@link slimPod}: the fields this controller and the
 *   IPAM GC read, no `managedFields`, no container specs), so 10,000 pods cost a few MB;
 * - a datastore syncer over WorkloadEndpoints, of which only an index is kept: endpoint → pod, and the
 *   fingerprint of the fields this controller manages, so a pod change is checked without a read.
 * A pod whose endpoints disagree with it is queued; a worker reads each endpoint, applies the pod and
 * writes it back with its resourceVersion (compare-and-swap), re-reading on a conflict. Nothing is
 * written before both inputs are in sync; then one full pass, and one every `resyncIntervalMs`.
 *
 * @packageDocumentation
 */
import type { Logger, WorkloadEndpoint } from "@margay/api";
import { silentLogger } from "@margay/api";
import { createSyncer, type Datastore, isDatastoreError, type Syncer } from "@margay/datastore";
import {
  type BackoffOptions,
  createInformer,
  type Informer,
  type InformerEvent,
  type KubePod,
  KubeResources,
  type KubeTransport,
  ORCHESTRATOR_KUBERNETES,
  type PodEndpointFields,
  podEndpointFields,
} from "@margay/kube-adapter";
import { Counter, Gauge, type Registry } from "prom-client";

/** Prefixes of the profiles derived from Kubernetes (`kns.<ns>`, `ksa.<ns>.<sa>`), replaced on a change. */
const KUBE_PROFILE_PREFIXES = ["kns.", "ksa."] as const;

/**
 * The informer transform: the pod reduced to what the controllers read (name, namespace, uid,
 * resourceVersion, labels; node, service account, host network; phase, reason and addresses for the
 * IPAM GC).
 * `managedFields`, annotations, container specs, volumes and conditions are dropped before caching
 * (client-go's TransformFunc habit), which is most of a pod's size.
 */
export function slimPod(pod: KubePod): KubePod {
  const m = pod.metadata;
  const spec = pod.spec;
  // `reason` is not in KubePod's type: the IPAM GC reads it (an evicted pod holds no address).
  const status = pod.status as (KubePod["status"] & { reason?: string }) | undefined;
  return {
    ...(pod.apiVersion === undefined ? {} : { apiVersion: pod.apiVersion }),
    ...(pod.kind === undefined ? {} : { kind: pod.kind }),
    metadata: {
      name: m.name,
      ...(m.namespace === undefined ? {} : { namespace: m.namespace }),
      ...(m.uid === undefined ? {} : { uid: m.uid }),
      ...(m.resourceVersion === undefined ? {} : { resourceVersion: m.resourceVersion }),
      ...(m.labels === undefined ? {} : { labels: m.labels }),
    },
    spec: {
      ...(spec?.nodeName === undefined ? {} : { nodeName: spec.nodeName }),
      ...(spec?.serviceAccountName === undefined ? {} : { serviceAccountName: spec.serviceAccountName }),
      ...(spec?.hostNetwork === undefined ? {} : { hostNetwork: spec.hostNetwork }),
    },
    status: {
      ...(status?.phase === undefined ? {} : { phase: status.phase }),
      ...(status?.reason === undefined ? {} : { reason: status.reason }),
      ...(status?.podIP === undefined ? {} : { podIP: status.podIP }),
      ...(status?.podIPs === undefined ? {} : { podIPs: status.podIPs.map((p) => ({ ip: p.ip })) }),
    },
  } as KubePod;
}

const isKubeProfile = (p: string) => KUBE_PROFILE_PREFIXES.some((x) => p.startsWith(x));

function canonical(f: PodEndpointFields): string {
  const labels = Object.keys(f.labels)
    .sort()
    .map((k) => [k, f.labels[k]]);
  return JSON.stringify([labels, f.serviceAccountName ?? null, f.profiles]);
}

/** The managed fields an endpoint holds now (other profiles, e.g. added by hand, are not managed). */
function endpointFields(wep: WorkloadEndpoint): PodEndpointFields {
  return {
    labels: wep.metadata.labels ?? {},
    serviceAccountName: wep.spec.serviceAccountName,
    profiles: (wep.spec.profiles ?? []).filter(isKubeProfile),
  };
}

/**
 * `wep` with its labels, service account and Kubernetes profiles set from `pod`, or `undefined` when it
 * already has them. Profiles not derived from Kubernetes are kept, after the pod's.
 */
export function applyPodToEndpoint(wep: WorkloadEndpoint, pod: KubePod): WorkloadEndpoint | undefined {
  const want = podEndpointFields(pod);
  if (canonical(want) === canonical(endpointFields(wep))) return undefined;
  const spec = { ...wep.spec };
  if (want.serviceAccountName === undefined) delete spec.serviceAccountName;
  else spec.serviceAccountName = want.serviceAccountName;
  spec.profiles = [...want.profiles, ...(wep.spec.profiles ?? []).filter((p) => !isKubeProfile(p))];
  return { ...wep, metadata: { ...wep.metadata, labels: { ...want.labels } }, spec };
}

/** Options of {@link createPodInformer}. */
export interface PodInformerOptions {
  readonly transport: KubeTransport;
  /** Items per list page. Default the informer's (500). */
  readonly pageSize?: number | undefined;
  /** Base watch timeout, s. Default the informer's (300). */
  readonly watchTimeoutSeconds?: number | undefined;
  readonly backoff?: BackoffOptions | undefined;
  readonly logger?: Logger | undefined;
  /** Aborting closes the informer. */
  readonly signal?: AbortSignal | undefined;
}

/** A pod informer several controllers share (one list+watch, one slim cache). */
export interface SharedPodInformer {
  readonly informer: Informer<KubePod>;
  /** Calls `listener` after each cache change. Returns an unsubscribe function. */
  subscribe(listener: (event: InformerEvent<KubePod>) => void): () => void;
}

/** Starts the shared pod informer, caching {@link slimPod} copies. */
export function createPodInformer(options: PodInformerOptions): SharedPodInformer {
  const listeners = new Set<(event: InformerEvent<KubePod>) => void>();
  const logger = options.logger ?? silentLogger;
  const informer = createInformer<KubePod>({
    transport: options.transport,
    resource: KubeResources.pods,
    pageSize: options.pageSize,
    watchTimeoutSeconds: options.watchTimeoutSeconds,
    backoff: options.backoff,
    logger,
    signal: options.signal,
    transform: (o) => slimPod(o as KubePod),
    onEvent(e) {
      for (const l of listeners) {
        try {
          l(e);
        } catch (error) {
          logger.warn({ error, key: e.key }, "pod event listener failed");
        }
      }
    },
  });
  return {
    informer,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}

/** Options of {@link createPodController}. */
export interface PodControllerOptions {
  /** The pods (see {@link createPodInformer}). Not closed by the controller. */
  readonly pods: SharedPodInformer;
  /** Where the endpoints live. Not closed by the controller. */
  readonly datastore: Datastore;
  /** Endpoints updated at once. Default 8. */
  readonly workers?: number | undefined;
  /** Attempts of one endpoint's read-modify-write before giving up (the pod is then retried). Default 10. */
  readonly maxAttempts?: number | undefined;
  /** Period of the full pass, ms; 0 disables. Default 300 000 (Calico's `reconcilerPeriod`). */
  readonly resyncIntervalMs?: number | undefined;
  /** Registry of the controller's metrics. Default: none registered. */
  readonly metrics?: Registry | undefined;
  readonly logger?: Logger | undefined;
  /** Aborting closes the controller. */
  readonly signal?: AbortSignal | undefined;
}

/** Counters of the pod controller. */
export interface PodControllerStats {
  /** Endpoints written. */
  updated: number;
  /** Compare-and-swap conflicts (each followed by a re-read). */
  conflicts: number;
  /** Failed reconciliations of a pod (each retried with back-off). */
  failures: number;
  /** Endpoints in the index. */
  endpoints: number;
  /** Pods waiting in the queue or being processed. */
  queued: number;
}

/** A running pod controller. */
export interface PodController {
  /** True once pods and endpoints are listed and the first pass is queued. */
  readonly synced: boolean;
  /** Resolves once {@link PodController.synced}; rejects if closed first. */
  waitForSync(options?: { signal?: AbortSignal | undefined }): Promise<void>;
  /** Resolves when nothing is queued, in progress or waiting for a retry. */
  idle(): Promise<void>;
  /** Queues every pod with an endpoint that disagrees with it (the periodic pass). */
  resync(): void;
  stats(): PodControllerStats;
  /** Stops the workers and the endpoint syncer. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface IndexedEndpoint {
  readonly namespace: string;
  readonly name: string;
  readonly podKey: string;
  /** Canonical managed fields, as stored. */
  readonly view: string;
}

const RETRY_BASE_MS = 100;
const RETRY_MAX_MS = 10_000;

/** Starts the controller: follows the endpoints at once, writes once pods and endpoints are in sync. */
export function createPodController(options: PodControllerOptions): PodController {
  const log = (options.logger ?? silentLogger).child({ component: "pod-controller" });
  const ds = options.datastore;
  const cache = options.pods.informer.cache;
  const workers = Math.max(1, options.workers ?? 8);
  const maxAttempts = Math.max(1, options.maxAttempts ?? 10);
  const abort = new AbortController();
  const onOuterAbort = () => void close();
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });

  const byEndpoint = new Map<string, IndexedEndpoint>();
  const byPod = new Map<string, Set<string>>();
  const stats = { updated: 0, conflicts: 0, failures: 0 };

  const queue = new Set<string>();
  const processing = new Set<string>();
  const again = new Set<string>();
  /** Pods waiting for a retry after a failure, with their timers; and consecutive failures per pod. */
  const retrying = new Map<string, NodeJS.Timeout>();
  const failures = new Map<string, number>();
  let active = 0;
  let wepsSynced = false;
  let synced = false;
  let closed = false;
  let idleWaiters: (() => void)[] = [];
  let syncWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];

  const metrics = options.metrics;
  const updates =
    metrics &&
    new Counter({
      name: "margay_kube_controllers_endpoint_updates_total",
      help: "WorkloadEndpoint writes of the pod controller by result (updated, conflict, error)",
      labelNames: ["result"] as const,
      registers: [metrics],
    });
  if (metrics) {
    new Gauge({
      name: "margay_kube_controllers_pod_queue_depth",
      help: "Pods queued or in progress in the pod controller",
      registers: [metrics],
      collect() {
        this.set(queue.size + processing.size + retrying.size);
      },
    });
    new Gauge({
      name: "margay_kube_controllers_cached_objects",
      help: "Objects held by the pod controller's caches (pods: the informer; workloadendpoints: the index)",
      labelNames: ["cache"] as const,
      registers: [metrics],
      collect() {
        this.set({ cache: "pods" }, cache.size);
        this.set({ cache: "workloadendpoints" }, byEndpoint.size);
      },
    });
  }

  const isIdle = () => queue.size === 0 && processing.size === 0 && retrying.size === 0;
  const checkIdle = () => {
    if (!isIdle() && !closed) return;
    const ws = idleWaiters;
    idleWaiters = [];
    for (const w of ws) w();
  };

  const desiredView = (podKey: string): string | undefined => {
    const pod = cache.get(podKey);
    return pod === undefined ? undefined : canonical(podEndpointFields(pod));
  };

  /** True when some endpoint of the pod disagrees with it. */
  const stale = (podKey: string): boolean => {
    const want = desiredView(podKey);
    if (want === undefined) return false;
    for (const k of byPod.get(podKey) ?? []) if (byEndpoint.get(k)?.view !== want) return true;
    return false;
  };

  const enqueue = (podKey: string) => {
    if (closed) return;
    if (retrying.has(podKey)) return; // its retry timer queues it
    if (processing.has(podKey)) {
      again.add(podKey);
      return;
    }
    queue.add(podKey);
    pump();
  };

  const pump = () => {
    while (!closed && active < workers && queue.size > 0) {
      const key = queue.values().next().value as string;
      queue.delete(key);
      processing.add(key);
      active++;
      void work(key);
    }
    checkIdle();
  };

  const work = async (podKey: string) => {
    let failed = false;
    try {
      await reconcilePod(podKey);
      failures.delete(podKey);
    } catch (error) {
      failed = !closed;
      if (failed) {
        stats.failures++;
        const n = (failures.get(podKey) ?? 0) + 1;
        failures.set(podKey, n);
        const delayMs = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (n - 1));
        log.warn({ err: error, pod: podKey, attempt: n, delayMs }, "endpoint update failed; retrying");
        const timer = setTimeout(() => {
          retrying.delete(podKey);
          enqueue(podKey);
        }, delayMs);
        timer.unref?.();
        retrying.set(podKey, timer);
      }
    } finally {
      processing.delete(podKey);
      active--;
      // A change seen while failing is covered by the retry.
      if (again.delete(podKey) && !failed) queue.add(podKey);
      pump();
    }
  };

  const reconcilePod = async (podKey: string) => {
    for (const k of [...(byPod.get(podKey) ?? [])]) {
      if (closed) return;
      const want = desiredView(podKey);
      const e = byEndpoint.get(k);
      if (want === undefined || e === undefined || e.view === want) continue;
      await reconcileEndpoint(e);
    }
  };

  const reconcileEndpoint = async (e: IndexedEndpoint) => {
    for (let attempt = 1; ; attempt++) {
      let wep: WorkloadEndpoint;
      try {
        wep = await ds.get<WorkloadEndpoint>(
          { kind: "WorkloadEndpoint", namespace: e.namespace, name: e.name },
          { signal: abort.signal },
        );
      } catch (err) {
        if (isDatastoreError(err) && err.code === "not-found") return; // deleted meanwhile: the syncer says so
        throw err;
      }
      const pod = cache.get(e.podKey);
      // The pod is gone, or the endpoint now belongs to another pod: nothing of ours to do.
      if (pod === undefined || `${wep.metadata.namespace}/${wep.spec.pod}` !== e.podKey) return;
      const next = applyPodToEndpoint(wep, pod);
      if (next === undefined) return;
      try {
        await ds.update(next, { signal: abort.signal });
        stats.updated++;
        updates?.inc({ result: "updated" });
        log.debug({ endpoint: `${e.namespace}/${e.name}`, pod: e.podKey }, "endpoint updated from its pod");
        return;
      } catch (err) {
        if (isDatastoreError(err) && err.code === "not-found") return;
        if (!isDatastoreError(err) || err.code !== "conflict") {
          updates?.inc({ result: "error" });
          throw err;
        }
        stats.conflicts++;
        updates?.inc({ result: "conflict" });
        if (attempt >= maxAttempts) throw err;
      }
    }
  };

  const indexRemove = (k: string) => {
    const old = byEndpoint.get(k);
    if (old === undefined) return;
    byEndpoint.delete(k);
    const set = byPod.get(old.podKey);
    set?.delete(k);
    if (set?.size === 0) byPod.delete(old.podKey);
  };

  const indexPut = (wep: WorkloadEndpoint) => {
    const namespace = wep.metadata.namespace ?? "";
    const k = `${namespace}/${wep.metadata.name}`;
    const pod = wep.spec?.pod;
    if (wep.spec?.orchestrator !== ORCHESTRATOR_KUBERNETES || pod === undefined || pod === "") {
      indexRemove(k);
      return;
    }
    const podKey = `${namespace}/${pod}`;
    const old = byEndpoint.get(k);
    if (old !== undefined && old.podKey !== podKey) indexRemove(k);
    byEndpoint.set(k, { namespace, name: wep.metadata.name, podKey, view: canonical(endpointFields(wep)) });
    let set = byPod.get(podKey);
    if (set === undefined) byPod.set(podKey, (set = new Set()));
    set.add(k);
    if (synced && stale(podKey)) enqueue(podKey);
  };

  const fullPass = () => {
    for (const podKey of byPod.keys()) if (stale(podKey)) enqueue(podKey);
  };

  const maybeSynced = () => {
    if (synced || closed || !wepsSynced || !options.pods.informer.hasSynced()) return;
    synced = true;
    log.info({ pods: cache.size, endpoints: byEndpoint.size }, "pods and endpoints in sync; reconciling");
    fullPass();
    const ws = syncWaiters;
    syncWaiters = [];
    for (const w of ws) w.resolve();
    checkIdle();
  };

  const unsubscribe = options.pods.subscribe((e) => {
    if (synced) {
      if (e.type !== "deleted" && stale(e.key)) enqueue(e.key);
    } else maybeSynced();
  });
  options.pods.informer
    .waitForSync({ signal: abort.signal })
    .then(maybeSynced)
    .catch(() => {});

  const syncer: Syncer<WorkloadEndpoint> = createSyncer<WorkloadEndpoint>({
    datastore: ds,
    kinds: ["WorkloadEndpoint"],
    logger: log,
    signal: abort.signal,
  });
  const follow = (async () => {
    try {
      for await (const batch of syncer) {
        for (const ev of batch) {
          if (ev.type === "in-sync") {
            wepsSynced = true;
            maybeSynced();
          } else if (ev.type === "upsert") indexPut(ev.object);
          else indexRemove(`${ev.key.namespace ?? ""}/${ev.key.name}`);
        }
      }
    } catch (error) {
      if (!closed) log.error({ err: error }, "endpoint syncer stopped");
    }
  })();

  const timer =
    (options.resyncIntervalMs ?? 300_000) > 0
      ? setInterval(() => {
          if (synced) fullPass();
        }, options.resyncIntervalMs ?? 300_000)
      : undefined;
  timer?.unref();

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      options.signal?.removeEventListener("abort", onOuterAbort);
      unsubscribe();
      for (const t of retrying.values()) clearTimeout(t);
      retrying.clear();
      queue.clear();
      abort.abort();
      await syncer.close();
      await follow;
      const ws = syncWaiters;
      syncWaiters = [];
      for (const w of ws) w.reject(new Error("pod controller closed"));
      checkIdle();
    })();
    return closing;
  }

  return {
    get synced() {
      return synced;
    },
    waitForSync(waitOptions = {}) {
      if (synced) return Promise.resolve();
      if (closed) return Promise.reject(new Error("pod controller closed"));
      return new Promise<void>((resolve, reject) => {
        const signal = waitOptions.signal;
        const onAbort = () => reject(signal?.reason ?? new Error("aborted"));
        signal?.addEventListener("abort", onAbort, { once: true });
        syncWaiters.push({
          resolve: () => {
            signal?.removeEventListener("abort", onAbort);
            resolve();
          },
          reject,
        });
      });
    },
    idle() {
      if (isIdle() || closed) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    resync() {
      if (synced) fullPass();
    },
    stats() {
      return {
        ...stats,
        endpoints: byEndpoint.size,
        queued: queue.size + processing.size + retrying.size,
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
