/**
 * The composition root of `margay-kube-controllers` (Calico's kube-controllers): opens the datastore and
 * the Kubernetes API connection, serves health and metrics (the agent's ops server, health aggregate and
 * registry helpers), campaigns for the `coordination.k8s.io/v1` Lease and, while it leads, runs the
 * enabled controllers:
 * - `namespace`, `serviceaccount`, `policy`: kube-adapter's converters (`createKubeAdapter` without
 *   `pods`: Namespaces and ServiceAccounts → profiles, NetworkPolicies and (Baseline)AdminNetworkPolicies
 *   → policies in their tiers);
 * - `workloadendpoint`: the pod controller (labels, service account, profiles of existing endpoints);
 * - `node`: the node controller and the IPAM garbage collector.
 * Pods are listed and watched once, for every controller that reads them.
 *
 * Losing the Lease stops the controllers and ends {@link RunningKubeControllers.done} with an error, so
 * the process exits and restarts as a candidate (client-go's and Calico's habit: a deposed leader never
 * keeps writing). Stopping releases the Lease so a standby takes over at its next retry.
 *
 * @packageDocumentation
 */
import { type Logger, silentLogger } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import { createIpam, type Ipam } from "@margay/ipam";
import {
  type BackoffOptions,
  createKubeAdapter,
  createKubeClient,
  createLeaderElector,
  type Informer,
  type KubeAdapter,
  type KubeClient,
  type KubeNode,
  type KubePod,
  type KubeResourceName,
  type KubeTransport,
  type LeaderElector,
} from "@margay/kube-adapter";
import type { Registry } from "prom-client";
import { Gauge } from "prom-client";
import pkg from "../../package.json" with { type: "json" };
import { type AgentHealth, createHealth } from "../node/health.js";
import { createAgentMetrics, registerHealthMetrics } from "../node/metrics.js";
import { type OpsServer, startOpsServer } from "../node/ops-server.js";
import type { ControllerName, KubeControllersConfig } from "./config.js";
import { createIpamGc, type IpamGc } from "./ipam-gc.js";
import { createNodeController, createNodeInformer, type NodeController } from "./node-controller.js";
import {
  createPodController,
  createPodInformer,
  type PodController,
  type SharedPodInformer,
} from "./pod-controller.js";

/** The version `margay-kube-controllers version` prints (the package's). */
export const KUBE_CONTROLLERS_VERSION: string = pkg.version;

/** Prefix of the controllers' metrics (`margay_kube_controllers_process_cpu_seconds_total`, ...). */
export const KUBE_CONTROLLERS_METRICS_PREFIX = "margay_kube_controllers_";

/** What the caller may hand the controllers (all optional; tests pass fakes). */
export interface KubeControllersDeps {
  /** Structured logger. Default silent. */
  readonly logger?: Logger | undefined;
  /** A datastore to use instead of opening `config.datastore` (not closed by the controllers). */
  readonly datastore?: Datastore | undefined;
  /** The API server connection instead of `config.kubeApi`. */
  readonly transport?: KubeTransport | undefined;
  /** Page size of the informers' lists. Default 500. */
  readonly pageSize?: number | undefined;
  /** Base watch timeout of the informers, s. Default 300. */
  readonly watchTimeoutSeconds?: number | undefined;
  /** Back-off of the informers after a failure. Defaults of `createBackoff`. */
  readonly backoff?: BackoffOptions | undefined;
}

/** The controllers running while this replica leads. */
export interface ActiveControllers {
  readonly adapter: KubeAdapter | undefined;
  readonly pods: SharedPodInformer | undefined;
  readonly podController: PodController | undefined;
  readonly ipamGc: IpamGc | undefined;
  readonly nodeController: NodeController | undefined;
  /** Resolves once every controller has listed what it follows and written its first state. */
  readonly synced: Promise<void>;
}

/** A running `margay-kube-controllers`. */
export interface RunningKubeControllers {
  /**
   * Resolves once health and metrics are served and the replica campaigns (or, without leader election,
   * once the controllers are in sync); rejects with a typed error if it cannot start.
   */
  readonly ready: Promise<void>;
  /** Rejects when the replica must exit (the Lease was lost, a controller failed for good). */
  readonly done: Promise<void>;
  /** Whether this replica leads (always true without leader election, once started). */
  readonly isLeader: boolean;
  /** The controllers while leading. */
  controllers(): ActiveControllers | undefined;
  /** Resolves once this replica leads and its controllers are in sync. */
  whenLeadingAndSynced(options?: { signal?: AbortSignal | undefined }): Promise<ActiveControllers>;
  readonly health: AgentHealth;
  readonly metrics: Registry;
  /** Where health and metrics are served, once listening. */
  ops(): OpsServer | undefined;
  /** Stops the controllers, releases the Lease, closes what it opened. Idempotent. */
  stop(): Promise<void>;
}

/** The kube-adapter resources each controller follows. */
const ADAPTER_RESOURCES: Partial<Record<ControllerName, readonly KubeResourceName[]>> = {
  namespace: ["namespaces"],
  serviceaccount: ["serviceaccounts"],
  policy: ["networkpolicies", "adminnetworkpolicies", "baselineadminnetworkpolicies"],
};

/** Brand of {@link KubeControllersError} (`Symbol.for`, shared across module copies). */
const BRAND: unique symbol = Symbol.for("@margay/margay/kube-controllers-error") as never;

/** Why a replica must exit: it lost the Lease (retryable: it restarts as a candidate), or its controllers could not start. */
export class KubeControllersError extends Error {
  /** Always true; see {@link isKubeControllersError}. */
  readonly [BRAND] = true as const;
  override readonly name = "KubeControllersError";
  /** `leadership-lost`, `startup-failed`. */
  readonly code: "leadership-lost" | "startup-failed";
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;
  constructor(
    code: "leadership-lost" | "startup-failed",
    message: string,
    details: Readonly<Record<string, unknown>> = {},
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.retryable = code === "leadership-lost";
    this.details = details;
  }
}

/** True if `e` is a {@link KubeControllersError} (brand check, not `instanceof`). */
export function isKubeControllersError(e: unknown): e is KubeControllersError {
  return typeof e === "object" && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
}

async function openDatastore(config: KubeControllersConfig): Promise<Datastore> {
  const { loadDatastoreConnection } = await import("../config/datastore-config.js");
  const { apiValidator } = await import("../config/api-validator.js");
  const connection = await loadDatastoreConnection(config.datastore, "datastore");
  const { createEtcdDatastore } = await import("@margay/datastore");
  return createEtcdDatastore({ ...connection, validate: apiValidator });
}

async function openTransport(config: KubeControllersConfig): Promise<KubeTransport> {
  const { loadKubeConfig, transportFromKubeConfig } = await import("@margay/kube-adapter");
  const k = config.kubeApi;
  const kc = loadKubeConfig(
    k.kind === "kubeconfig" ? { paths: k.paths ?? [k.path] } : { inCluster: { host: k.host, port: k.port } },
  );
  return transportFromKubeConfig(kc);
}

/** Starts the controllers (see the module comment). Returns at once; `ready` says when it is up. */
export function runKubeControllers(
  config: KubeControllersConfig,
  deps: KubeControllersDeps = {},
): RunningKubeControllers {
  const logger = (deps.logger ?? silentLogger).child({ component: "kube-controllers" });
  const health = createHealth();
  const metrics = createAgentMetrics(KUBE_CONTROLLERS_METRICS_PREFIX);
  registerHealthMetrics(metrics, health, KUBE_CONTROLLERS_VERSION, KUBE_CONTROLLERS_METRICS_PREFIX);
  const enabled = new Set(config.enabledControllers);
  health.report("startup", { live: true, ready: false, reason: "starting" });

  let ops: OpsServer | undefined;
  let datastore: Datastore | undefined;
  let ownDatastore = false;
  let ipam: Ipam | undefined;
  let elector: LeaderElector | undefined;
  let active: ActiveControllers | undefined;
  let activeStop: (() => Promise<void>) | undefined;
  let leading = false;
  let lost = false;
  let stopping = false;
  const leadWaiters = new Set<{ resolve: (a: ActiveControllers) => void; reject: (e: unknown) => void }>();

  let failDone: (e: unknown) => void = () => {};
  let endDone: () => void = () => {};
  const done = new Promise<void>((resolve, reject) => {
    failDone = reject;
    endDone = resolve;
  });
  done.catch(() => {});

  new Gauge({
    name: `${KUBE_CONTROLLERS_METRICS_PREFIX}is_leader`,
    help: "1 while this replica holds the Lease (or runs without leader election), else 0",
    registers: [metrics],
    collect() {
      this.set(leading ? 1 : 0);
    },
  });

  /** Builds and starts the enabled controllers (stopped by `activeStop`). */
  const startControllers = (
    ds: Datastore,
    transport: KubeTransport,
    client: KubeClient,
  ): ActiveControllers => {
    const informerOptions = {
      transport,
      pageSize: deps.pageSize,
      watchTimeoutSeconds: deps.watchTimeoutSeconds,
      backoff: deps.backoff,
      logger,
    };
    const adapterResources = config.enabledControllers.flatMap((c) => ADAPTER_RESOURCES[c] ?? []);
    const adapter =
      adapterResources.length === 0
        ? undefined
        : createKubeAdapter({
            ...informerOptions,
            datastore: ds,
            resources: adapterResources,
            resyncIntervalMs: config.reconcilerPeriodMs,
            logger: logger.child({ component: "kube-adapter" }),
          });
    const pods =
      enabled.has("workloadendpoint") || enabled.has("node")
        ? createPodInformer({ ...informerOptions, logger: logger.child({ component: "pod-informer" }) })
        : undefined;
    const podController =
      pods !== undefined && enabled.has("workloadendpoint")
        ? createPodController({
            pods,
            datastore: ds,
            resyncIntervalMs: config.reconcilerPeriodMs,
            metrics,
            logger,
          })
        : undefined;
    let nodes: Informer<KubeNode> | undefined;
    let nodeController: NodeController | undefined;
    let ipamGc: IpamGc | undefined;
    if (enabled.has("node") && pods !== undefined) {
      ipam ??= createIpam({ datastore: ds });
      nodes = createNodeInformer({
        ...informerOptions,
        logger: logger.child({ component: "node-informer" }),
        onEvent: (e) => nodeController?.onNodeEvent(e),
      });
      ipamGc = createIpamGc({
        datastore: ds,
        ipam,
        pods: pods.informer,
        nodes,
        getPod: (namespace, name, o) => client.get<KubePod>("pods", namespace, name, o),
        gracePeriodMs: config.ipamGc.gracePeriodMs,
        dryRunPeriodMs: config.ipamGc.dryRunPeriodMs,
        registry: metrics,
        logger: logger.child({ component: "ipam-gc" }),
      });
      const gc = ipamGc;
      nodeController = createNodeController({
        datastore: ds,
        ipam,
        nodes,
        pods: pods.informer,
        onNodeDeleted: (node) => gc.nodeDeleted(node),
        resyncIntervalMs: config.reconcilerPeriodMs,
        registry: metrics,
        logger: logger.child({ component: "node-controller" }),
      });
      nodeController.start();
      ipamGc.start();
      // Deletions missed while no replica led: one resync as soon as the Nodes are listed.
      const nc = nodeController;
      nodes.waitForSync().then(
        () => nc.resync().catch((e: unknown) => logger.warn({ err: e }, "node resync failed")),
        () => {},
      );
    }

    const report = (name: string, p: Promise<unknown>) => {
      health.report(name, { live: true, ready: false, reason: "listing" });
      return p.then(
        () => health.report(name, { live: true, ready: true }),
        (e: unknown) => {
          if (!stopping && leading) health.report(name, { live: false, ready: false, reason: String(e) });
          throw e;
        },
      );
    };
    const synced = Promise.all([
      adapter ? report("policy", adapter.waitForSync()) : undefined,
      podController ? report("workloadendpoint", podController.waitForSync()) : undefined,
      pods && !podController ? report("pods", pods.informer.waitForSync()) : undefined,
      nodes ? report("node", nodes.waitForSync()) : undefined,
    ]).then(() => {
      logger.info({ controllers: config.enabledControllers }, "controllers in sync");
    });
    synced.catch(() => {});
    const result: ActiveControllers = { adapter, pods, podController, ipamGc, nodeController, synced };
    activeStop = async () => {
      await Promise.allSettled([ipamGc?.close(), nodeController?.close(), podController?.close()]);
      await Promise.allSettled([nodes?.close(), pods?.informer.close(), adapter?.close()]);
      for (const n of ["policy", "workloadendpoint", "pods", "node"]) health.remove(n);
    };
    return result;
  };

  const lead = (ds: Datastore, transport: KubeTransport, client: KubeClient) => {
    // A replica that lost the Lease exits; it never leads again in this process (its metrics, caches
    // and queues are not rebuilt).
    if (lost || stopping) return;
    leading = true;
    logger.info({ identity: config.leaderElection.identity }, "leading: starting the controllers");
    try {
      active = startControllers(ds, transport, client);
    } catch (e) {
      logger.error({ err: e }, "the controllers could not start");
      lost = true;
      leading = false;
      failDone(
        new KubeControllersError("startup-failed", `the controllers could not start: ${String(e)}`, {}, e),
      );
      return;
    }
    const a = active;
    void a.synced.then(
      () => {
        for (const w of leadWaiters) w.resolve(a);
        leadWaiters.clear();
      },
      () => {},
    );
  };

  const unlead = async () => {
    const wasLeading = leading;
    leading = false;
    const stopIt = activeStop;
    active = undefined;
    activeStop = undefined;
    await stopIt?.();
    if (wasLeading && !stopping) {
      lost = true;
      logger.error({ identity: config.leaderElection.identity }, "leadership lost: exiting");
      failDone(
        new KubeControllersError("leadership-lost", "the Lease was lost; the controllers stopped", {
          lease: `${config.leaderElection.namespace}/${config.leaderElection.name}`,
        }),
      );
    }
  };

  const ready = (async () => {
    ops = await startOpsServer({
      config: {
        health: config.health,
        metrics: { ...config.metrics, perPeerLabels: false },
      },
      health,
      metrics,
      logger,
    });
    // The kubeconfig first: a bad one is a configuration error, found before dialling etcd.
    const transport = deps.transport ?? (await openTransport(config));
    if (deps.datastore !== undefined) datastore = deps.datastore;
    else {
      datastore = await openDatastore(config);
      ownDatastore = true;
    }
    const client = createKubeClient(transport);
    if (stopping) return;
    const ds = datastore;
    if (!config.leaderElection.enabled) {
      lead(ds, transport, client);
      const a = active as ActiveControllers | undefined;
      if (a === undefined)
        throw new KubeControllersError("startup-failed", "the controllers could not start");
      await a.synced;
    } else {
      const le = config.leaderElection;
      elector = createLeaderElector({
        client,
        namespace: le.namespace,
        name: le.name,
        identity: le.identity,
        leaseDurationMs: le.leaseDurationMs,
        renewDeadlineMs: le.renewDeadlineMs,
        retryPeriodMs: le.retryPeriodMs,
        logger: logger.child({ component: "leader-election" }),
        onStartedLeading: () => lead(ds, transport, client),
        onStoppedLeading: unlead,
        onNewLeader: (identity) => logger.info({ leader: identity }, "new leader observed"),
      });
      health.report("leader-election", { live: true, ready: true });
      elector.start();
    }
    health.remove("startup");
  })();
  ready.catch((e: unknown) => {
    if (!stopping) health.report("startup", { live: false, ready: false, reason: String(e) });
  });

  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      stopping = true;
      await ready.catch(() => {});
      await elector
        ?.stop({ release: true })
        .catch((e: unknown) => logger.warn({ err: e }, "releasing the Lease failed"));
      await unlead();
      for (const w of leadWaiters) w.reject(new Error("the controllers were stopped"));
      leadWaiters.clear();
      await ipam?.close?.();
      await ops?.close();
      if (ownDatastore) await datastore?.close().catch(() => {});
      endDone();
    })();
    return stopped;
  };

  return {
    ready,
    done,
    get isLeader() {
      return leading;
    },
    controllers: () => active,
    whenLeadingAndSynced(waitOptions = {}) {
      return new Promise<ActiveControllers>((resolve, reject) => {
        if (stopping) return reject(new Error("the controllers were stopped"));
        const w = { resolve, reject };
        const signal = waitOptions.signal;
        signal?.addEventListener("abort", () => {
          leadWaiters.delete(w);
          reject(signal.reason);
        });
        const a = active;
        if (a !== undefined) {
          a.synced.then(
            () => resolve(a),
            () => leadWaiters.add(w),
          );
        } else leadWaiters.add(w);
      });
    },
    health,
    metrics,
    ops: () => ops,
    stop,
  };
}
