/**
 * The node agent's composition root (calico-node's startup): opens the datastore, folds in the
 * `AgentConfiguration` resources, detects the node's addresses, creates the default pools, registers the
 * Node, derives the MTU, then starts the dataplane pipeline, BGP (backend `bgp`), the workload API, the
 * operations endpoints and the status reporter, all sharing one {@link AgentContext}. It builds and wires;
 * every behaviour lives in the parts. Signals are the caller's (`margay-node`'s CLI calls `stop`).
 *
 * Stopping is graceful: BGP closes its sessions without a NOTIFICATION (peers keep our routes for the
 * restart time), the workload API lets requests in flight finish, the pipeline stops WITHOUT tearing the
 * dataplane down (routes and rules stay for the next start to adopt), then the datastore is closed.
 *
 * @packageDocumentation
 */
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import { type AgentConfiguration, type IPPool, type Logger, sleep } from "@margay/api";
import {
  CURRENT_NETNS,
  type CommandRunner,
  createProcessRunner,
  createWorkloadPlumber,
  type NetnsHandle,
} from "@margay/dataplane";
import { type Datastore, isDatastoreError } from "@margay/datastore";
import { createIpam, type Ipam } from "@margay/ipam";
import { acquireFileLock } from "../cni/ipam/file-lock.js";
import { apiValidator } from "../config/api-validator.js";
import { AgentError, AgentErrorCode, errorCode, isAgentError, messageOf } from "./agent-error.js";
import type { BgpAgent } from "./bgp/agent.js";
import { applyAgentConfiguration } from "./config/agent-configuration.js";
import { autodetectAddresses } from "./config/autodetect.js";
import { MARGAY_NODE_VERSION } from "./config/cli.js";
import { isAgentConfigError } from "./config/errors.js";
import { deriveMtu } from "./config/mtu.js";
import type { ConfigSources, ConfigWarning } from "./config/resolve.js";
import { SETTING_NAMES } from "./config/schema.js";
import type { AgentConfig } from "./config/types.js";
import type { AgentContext, NodeAddresses } from "./context.js";
import type { RunningDataplanePipeline } from "./dataplane/pipeline.js";
import { type AgentHealth, createHealth } from "./health.js";
import { createAgentMetrics, type IpamMetrics, registerHealthMetrics, startIpamMetrics } from "./metrics.js";
import { type OpsServer, startOpsServer } from "./ops-server.js";
import { ensureDefaultPools, type RegistrationResult, registerNode } from "./registration.js";
import { type SnapshotOwnership, takeSnapshotOwnership } from "./snapshot-owner.js";
import type { KubernetesApi } from "./kubernetes/connection.js";
import type { ServiceFeed } from "./kubernetes/service-feed.js";
import { type StatusReporter, startStatusReporter } from "./status-reporter.js";
import { startTunnelAddressFollower, type TunnelAddressFollower } from "./tunnel-addresses.js";
import { startWorkloadMtuFollower, type WorkloadMtuFollower } from "./workload-mtu.js";
import type { WorkloadApiOptions } from "./workload/server.js";

/** What the caller may hand the agent besides its configuration (all optional). */
export interface NodeAgentDeps {
  /** Structured logger. Default: pino JSON on stdout at `config.logLevel`. */
  readonly logger?: Logger | undefined;
  /** Where each setting came from (`resolveBootstrapConfig`); flags and environment win over resources. */
  readonly sources?: ConfigSources | undefined;
  /** Warnings of the configuration resolution, logged at start. */
  readonly warnings?: readonly ConfigWarning[] | undefined;
  /** Runs `ip`, `nft`, `sysctl`. Default: real processes. */
  readonly runner?: CommandRunner | undefined;
  /**
   * The namespace the agent programs and reads its addresses from: the host's. Default: the process's own
   * (`margay-node` runs in the host namespace); tests hand a namespace they created.
   */
  readonly netns?: NetnsHandle | undefined;
  /** A datastore to use instead of opening `config.datastore` (not closed by the agent). */
  readonly datastore?: Datastore | undefined;
  /** How long a retryable startup failure (datastore unavailable) is retried, ms. Default 30 000. */
  readonly startupRetryMs?: number | undefined;
}

/** A running agent. */
export interface RunningAgent {
  /**
   * Resolves once the agent has started every part and the dataplane applied its first in-sync; rejects
   * with a typed error (`AgentError`, `AgentConfigError`) naming the step that failed.
   */
  readonly ready: Promise<void>;
  /** Stops gracefully (routes and rules stay). Idempotent; safe during startup. */
  stop(signal?: string): Promise<void>;
  /** The agent's health aggregate. */
  readonly health: AgentHealth;
  /** The agent's context once the datastore is open and the configuration applied. */
  context(): AgentContext | undefined;
  /** The operations endpoints once listening. */
  ops(): OpsServer | undefined;
}

/** How long stop() waits for an interrupted startup step to give up before closing what is started. */
const STOP_STARTUP_WAIT_MS = 10_000;

/** How long stop() waits for the last NodeStatus write. */
const FINAL_STATUS_WAIT_MS = 2_000;

/** The startup steps, in order (`details.step` of a startup failure). */
export const STARTUP_STEPS = [
  "datastore",
  "agent-configuration",
  "addresses",
  "default-pools",
  "registration",
  "mtu",
  "operations",
  "kubernetes",
  "dataplane",
  "bgp",
  "workload-api",
  "status",
] as const;
/** One of {@link STARTUP_STEPS}. */
export type StartupStep = (typeof STARTUP_STEPS)[number];

async function defaultLogger(config: AgentConfig): Promise<Logger> {
  const { default: pino } = await import("pino");
  return pino(
    { level: config.logLevel, base: { node: config.nodeName }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false }),
  ) as unknown as Logger;
}

/** Wraps a step's failure in an `AgentError` naming the step, keeping typed config errors as they are. */
function stepError(step: StartupStep, e: unknown): Error {
  if (isAgentError(e) || isAgentConfigError(e)) return e;
  const code = step === "datastore" ? AgentErrorCode.DatastoreOpen : AgentErrorCode.StartupFailed;
  return new AgentError(
    code,
    `startup step ${step} failed: ${messageOf(e)}`,
    { step, causeCode: errorCode(e) },
    { cause: e },
  );
}

function stoppedError(step: string): AgentError {
  return new AgentError(AgentErrorCode.Stopped, `the agent was stopped during startup (step ${step})`, {
    step,
  });
}

function netnsName(netns: NetnsHandle): string | undefined {
  return netns.kind === "named" ? netns.name : undefined;
}

async function openDatastore(
  config: AgentConfig,
): Promise<{ datastore: Datastore; flush?: () => Promise<void> }> {
  if (config.datastore.type === "memory") {
    const { createMemoryDatastore } = await import("@margay/datastore");
    const { snapshotPath } = config.datastore;
    await mkdir(dirname(snapshotPath), { recursive: true, mode: 0o700 });
    // The agent reads the snapshot once and rewrites it after every write: it owns the file while it runs
    // (margayctl then opens it read-only; a second agent refuses). Marker and load happen under the lock
    // margay-ipam and margayctl write under, so a write of theirs lands before the load or not at all.
    const lock = await acquireFileLock(`${snapshotPath}.lock`, { timeoutMs: config.datastore.lockTimeoutMs });
    let ownership: SnapshotOwnership | undefined;
    try {
      ownership = takeSnapshotOwnership(snapshotPath);
      // Sync durability: a write acknowledged to a pod (an address, an endpoint) survives a crash.
      const memory = createMemoryDatastore({ snapshotPath, validate: apiValidator });
      const owned = ownership;
      const close = memory.close.bind(memory);
      // Released once the last snapshot is written, whoever closes the datastore.
      memory.close = async () => {
        try {
          await close();
        } finally {
          owned.release();
        }
      };
      return { datastore: memory, flush: () => memory.flush() };
    } catch (e) {
      ownership?.release();
      throw e;
    } finally {
      await lock.release();
    }
  }
  const { loadDatastoreConnection } = await import("../config/datastore-config.js");
  const connection = await loadDatastoreConnection(config.datastore, "datastore");
  const { createEtcdDatastore } = await import("@margay/datastore");
  return { datastore: createEtcdDatastore({ ...connection, validate: apiValidator }) };
}

/**
 * Starts the node agent. Resolves at once with a handle whose `ready` settles when startup completes or
 * fails; every startup failure is typed and names its step (`details.step`).
 */
export async function runNodeAgent(config: AgentConfig, deps: NodeAgentDeps = {}): Promise<RunningAgent> {
  const rootLogger = deps.logger ?? (await defaultLogger(config));
  const logger = rootLogger.child({ component: "agent" });
  const health = createHealth();
  health.report("agent", { live: true, ready: false, reason: "starting" });
  const metrics = createAgentMetrics();
  registerHealthMetrics(metrics, health, MARGAY_NODE_VERSION);
  const runner = deps.runner ?? createProcessRunner();
  const netns = deps.netns ?? CURRENT_NETNS;
  const abort = new AbortController();
  const startedAt = new Date();
  let step: StartupStep = "datastore";
  let stopping = false;
  let started = false;

  // What has been started, closed in reverse by stop().
  let ctx: AgentContext | undefined;
  let datastore: Datastore | undefined;
  let flush: (() => Promise<void>) | undefined;
  let ipam: Ipam | undefined;
  let ipamMetrics: IpamMetrics | undefined;
  let ops: OpsServer | undefined;
  let pipeline: RunningDataplanePipeline | undefined;
  let bgp: BgpAgent | undefined;
  let workload: { close(): Promise<void> } | undefined;
  // Ends the plumber's kept `ip` helpers at stop (idle ones also end by themselves).
  let closePlumber: (() => void) | undefined;
  let reporter: StatusReporter | undefined;
  let tunnels: TunnelAddressFollower | undefined;
  let workloadMtu: WorkloadMtuFollower | undefined;
  let kube: KubernetesApi | undefined;
  let serviceFeed: ServiceFeed | undefined;

  const checkStopped = () => {
    if (stopping) throw stoppedError(step);
  };

  /** Runs a step, retrying retryable failures (the datastore coming up) for a bounded time. */
  const retrying = async <T>(fn: () => Promise<T>): Promise<T> => {
    const deadline = Date.now() + (deps.startupRetryMs ?? 30_000);
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const retryable = (e as { retryable?: unknown }).retryable === true;
        if (!retryable || stopping || Date.now() >= deadline) throw e;
        const delay = Math.min(5_000, 200 * 2 ** attempt);
        logger.warn({ step, err: e, retryInMs: delay }, "startup step failed; retrying");
        await sleep(delay, abort.signal).catch(() => {});
      }
    }
  };

  const startup = async (): Promise<void> => {
    for (const w of deps.warnings ?? []) logger.warn({ code: w.code, field: w.field }, w.message);

    step = "datastore";
    if (deps.datastore !== undefined) datastore = deps.datastore;
    else ({ datastore, flush } = await openDatastore(config));
    const ds = datastore;
    checkStopped();

    step = "agent-configuration";
    const [global, own] = await retrying(() =>
      Promise.all(
        ["default", `node.${config.nodeName}`].map((name) =>
          ds
            .get<AgentConfiguration>({ kind: "AgentConfiguration", name }, { signal: abort.signal })
            .catch((e: unknown) => {
              if (isDatastoreError(e) && e.code === "not-found") return undefined;
              throw e;
            }),
        ),
      ),
    );
    const sources =
      deps.sources ??
      (Object.fromEntries(SETTING_NAMES.map((n) => [n, "default"])) as unknown as ConfigSources);
    const applied = applyAgentConfiguration(config, sources, { global, node: own });
    for (const w of applied.warnings) logger.warn({ code: w.code, field: w.field }, w.message);
    const cfg = applied.config;
    ctx = Object.freeze({
      config: cfg,
      datastore: ds,
      logger: rootLogger,
      metrics,
      health,
      signal: abort.signal,
    });
    const c = ctx;
    health.report("datastore", { live: true, ready: true });
    checkStopped();

    step = "operations";
    ops = await startOpsServer(c);
    checkStopped();

    step = "addresses";
    const addresses: NodeAddresses = await autodetectAddresses(cfg, {
      runner,
      logger: rootLogger.child({ component: "autodetect" }),
      netns: netnsName(netns),
      signal: abort.signal,
    });
    logger.info(
      { ipv4: addresses.ipv4, ipv6: addresses.ipv6, interface: addresses.interface },
      "node addresses",
    );
    checkStopped();

    step = "default-pools";
    await retrying(() => ensureDefaultPools(c));
    checkStopped();

    step = "registration";
    ipam = createIpam({ datastore: ds, logger: rootLogger.child({ component: "ipam" }) });
    const ipamClient = ipam;
    const registration: RegistrationResult = await retrying(() =>
      registerNode({ ...c, health }, addresses, { ipam: ipamClient }),
    );
    logger.info(
      { vxlanTunnelAddr: registration.vxlan.ipv4?.address, conflicts: registration.conflicts.length },
      "node registered",
    );
    // Pools switched to (or from) VXLAN while running: the Node's tunnel address and MAC follow.
    tunnels = startTunnelAddressFollower({ ...c, health }, { addresses, ipam: ipamClient });
    checkStopped();

    step = "mtu";
    const pools = (await ds.list<IPPool>("IPPool", { signal: abort.signal })).items;
    // New workloads get the MTU of the encapsulations the pools use now (a pool switched to VXLAN while
    // running lowers it for the pods added afterwards; existing pods keep theirs).
    workloadMtu = startWorkloadMtuFollower(c, { addresses, pools });
    const mtuFollower = workloadMtu;
    const mtu = () => mtuFollower.current;
    // The VXLAN device exists only while a pool uses VXLAN, so it always gets the VXLAN MTU (felix's
    // VXLANMTU), whatever the pools used at start.
    const vxlanMtu = deriveMtu(cfg, addresses, ["vxlan"]);
    // Nobody scrapes a disabled endpoint: spare the datastore the periodic reads.
    if (cfg.metrics.enabled)
      ipamMetrics = startIpamMetrics({
        registry: metrics,
        datastore: ds,
        ipam: ipamClient,
        intervalMs: cfg.statusIntervalMs,
        logger: rootLogger.child({ component: "ipam-metrics" }),
        signal: abort.signal,
      });

    if (cfg.kubernetes !== undefined) {
      // Kubernetes mode: pod ADDs read the pod from the API server (see node/kubernetes).
      step = "kubernetes";
      const { openKubernetesApi } = await import("./kubernetes/connection.js");
      kube = openKubernetesApi(cfg.kubernetes);
      logger.info({ server: kube.server }, "kubernetes mode");
    }

    step = "dataplane";
    const { createAgentDriver } = await import("./dataplane/driver.js");
    const { startDataplanePipeline } = await import("./dataplane/pipeline.js");
    const driver = await createAgentDriver(c, { mtu: vxlanMtu, netns, runner });
    pipeline = await startDataplanePipeline(c, { addresses, mtu: vxlanMtu, driver });
    const pipe = pipeline;
    checkStopped();

    if (cfg.networkingBackend === "bgp") {
      step = "bgp";
      const { startBgp } = await import("./bgp/agent.js");
      if (kube !== undefined) {
        // Services and EndpointSlices: host routes of externalTrafficPolicy: Local services.
        const { startServiceFeed } = await import("./kubernetes/service-feed.js");
        serviceFeed = startServiceFeed({
          transport: kube.transport,
          logger: rootLogger.child({ component: "kubernetes", feed: "services" }),
          signal: abort.signal,
        });
      }
      bgp = startBgp(c, { pipeline: pipe, addresses, services: serviceFeed });
      checkStopped();
    }

    step = "workload-api";
    const { startWorkloadApi } = await import("./workload/server.js");
    const plumber = createWorkloadPlumber({ runner, hostNetns: netns, ifPrefix: cfg.interfacePrefixes[0] });
    closePlumber = () => plumber.close?.();
    let enrichAdd: WorkloadApiOptions["enrichAdd"];
    let nodePodCidrs: WorkloadApiOptions["nodePodCidrs"];
    if (kube !== undefined) {
      const { createPodInfoSource } = await import("./kubernetes/pod-info.js");
      enrichAdd = createPodInfoSource({
        getter: kube.client,
        nodeName: cfg.nodeName,
        logger: rootLogger.child({ component: "kubernetes" }),
      }).enrichAdd;
      // host-local `usePodCidr`: the Kubernetes Node's spec.podCIDRs, as Calico reads them.
      const { createNodePodCidrsSource } = await import("./kubernetes/node-pod-cidrs.js");
      const cidrs = createNodePodCidrsSource({
        getter: kube.client,
        nodeName: cfg.nodeName,
        logger: rootLogger.child({ component: "kubernetes" }),
      });
      nodePodCidrs = (signal) => cidrs.podCidrs(signal);
    }
    workload = await startWorkloadApi(c, {
      pipeline: pipe,
      ipam: ipamClient,
      plumber,
      addresses,
      mtu,
      enrichAdd,
      nodePodCidrs,
    });
    checkStopped();

    step = "status";
    reporter = startStatusReporter(c, {
      bgp,
      pipeline: pipe,
      addresses,
      mtu,
      version: MARGAY_NODE_VERSION,
      startedAt,
    });
    const statusReporter = reporter;
    // NodeStatus shows the new MTU at once, not at the next periodic write.
    mtuFollower.onChange(() => void statusReporter.report());

    // Ready once the dataplane holds the first full state (pods may then be added).
    await new Promise<void>((resolve, reject) => {
      if (pipe.inSync) return resolve();
      const onStop = () => {
        off();
        reject(stoppedError("dataplane-sync"));
      };
      const off = pipe.onRoutes(() => {
        if (!pipe.inSync) return;
        off();
        abort.signal.removeEventListener("abort", onStop);
        resolve();
      });
      abort.signal.addEventListener("abort", onStop, { once: true });
      if (pipe.inSync) {
        off();
        resolve();
      }
    });
    started = true;
    health.report("agent", { live: true, ready: true });
    logger.info({ startupMs: Date.now() - startedAt.getTime() }, "agent ready");
  };

  const ready = startup().catch((e: unknown) => {
    const err = stepError(step, e);
    if (!stopping)
      logger.error(
        {
          code: errorCode(err),
          step,
          reason: err.message,
          details: (err as { details?: unknown }).details,
          err,
        },
        "agent startup failed",
      );
    health.report("agent", {
      live: false,
      ready: false,
      reason: `startup failed at step ${step}: ${err.message}`,
    });
    throw err;
  });
  // The caller observes `ready`; never an unhandled rejection when it only calls stop().
  ready.catch(() => {});

  let stopped: Promise<void> | undefined;
  const stop = (signal?: string): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      logger.info({ signal }, "agent stopping");
      health.report("agent", { live: true, ready: false, reason: "stopping" });
      if (!started) {
        // Startup in flight: end its current wait, and let it fail before closing what it started (a
        // part it was starting now is then visible here, so it is closed too).
        abort.abort(stoppedError(step));
        // Every step honours the signal; the bound only guards against one that does not.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          ready.catch(() => {}),
          new Promise<void>((r) => {
            timer = setTimeout(r, STOP_STARTUP_WAIT_MS);
          }),
        ]);
        clearTimeout(timer);
      }
      const failures: unknown[] = [];
      const attempt = async (what: string, fn: () => Promise<void> | void) => {
        try {
          await fn();
        } catch (e) {
          failures.push(e);
          logger.warn({ err: e, part: what }, "stopping a part failed");
        }
      };
      // Peers first: a graceful BGP close keeps our routes at the peers while we are down.
      await attempt("bgp", () => bgp?.close({ graceful: true }));
      await attempt("workload-api", () => workload?.close());
      await attempt("workload-plumber", () => closePlumber?.());
      await attempt("dataplane", () => pipeline?.close({ teardown: false }));
      await attempt("kubernetes", async () => {
        await serviceFeed?.close();
        kube?.close();
      });
      // A last report (agent not ready: stopping) so `margayctl node status` does not show a stopped node
      // as ready; bounded, a datastore that is down must not hold the stop.
      await attempt("status", async () => {
        if (reporter === undefined) return;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          reporter.report(),
          new Promise<void>((r) => {
            timer = setTimeout(r, FINAL_STATUS_WAIT_MS);
          }),
        ]);
        clearTimeout(timer);
        await reporter.close();
      });
      await attempt("tunnel-addresses", () => tunnels?.close());
      await attempt("mtu", () => workloadMtu?.close());
      await attempt("ipam-metrics", () => ipamMetrics?.close());
      await attempt("ipam", () => ipam?.close());
      await attempt("operations", () => ops?.close());
      if (!abort.signal.aborted) abort.abort(stoppedError("stop"));
      if (deps.datastore === undefined) {
        await attempt("datastore-flush", () => flush?.());
        await attempt("datastore", () => datastore?.close());
      }
      logger.info({ signal, failures: failures.length }, "agent stopped");
      if (failures.length > 0)
        throw new AgentError(
          AgentErrorCode.StartupFailed,
          `stopping failed: ${failures.map(messageOf).join("; ")}`,
          {
            step: "stop",
          },
        );
    })();
    return stopped;
  };

  return {
    ready,
    stop,
    health,
    context: () => ctx,
    ops: () => ops,
  };
}
