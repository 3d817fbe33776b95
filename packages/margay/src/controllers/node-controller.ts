/**
 * The controllers' node controller: a Kubernetes Node deleted → the Margay Node that stands for it
 * removed, the WorkloadEndpoints it hosted whose pods no longer exist removed, the affinities of its
 * empty blocks released, and the IPAM GC told (it frees the addresses of the node's gone pods after
 * its grace period, then the node's remaining blocks), as Calico kube-controllers' node controller
 * does in etcd mode (`kube-controllers/pkg/controllers/node`).
 *
 * A Margay Node stands for the Kubernetes Node named in its `orchRefs` (`orchestrator: k8s`); a Node
 * without any `orchRefs` stands for the Kubernetes Node of its own name (agents in Kubernetes mode
 * name themselves after it, `NODENAME` = `spec.nodeName`). While that Kubernetes Node exists, the
 * controller records it in the Node's `orchRefs` (on the Node's ADDED event and in every resync; Calico's
 * agent writes them itself in etcd mode), so that the periodic resync, which catches deletions missed
 * while no controller ran, can remove it later: the resync removes only Nodes whose `orchRefs` name a
 * Kubernetes Node that does not exist, so hosts outside Kubernetes are never touched.
 *
 * Every removal re-checks, right before it, that the Kubernetes Node is still absent, and deletes under
 * compare-and-swap on the revision it read: a node registering again under the same name wins.
 *
 * @packageDocumentation
 */
import { type Logger, type Node, silentLogger, type WorkloadEndpoint } from "@margay/api";
import { type Datastore, isDatastoreError } from "@margay/datastore";
import type { Ipam } from "@margay/ipam";
import {
  createInformer,
  type Informer,
  type InformerEvent,
  type InformerOptions,
  type KubeNode,
  type KubePod,
  KubeResources,
  type KubeTransport,
  ORCHESTRATOR_KUBERNETES,
} from "@margay/kube-adapter";
import { Counter, type Registry } from "prom-client";

/** Default interval of the periodic resync, ms (5 minutes, as Calico's node controller). */
export const DEFAULT_NODE_RESYNC_INTERVAL_MS = 5 * 60_000;

/**
 * The informer transform of Kubernetes Nodes: the node reduced to what the node controller and the IPAM GC
 * read (they only ask whether a node of that name exists): name, uid and resourceVersion. Labels,
 * annotations, `spec` and `status` (conditions, images, addresses, `managedFields`) are dropped before
 * caching; a Node's status alone runs to kilobytes on a busy host.
 */
export function slimNode(node: KubeNode): KubeNode {
  const m = node.metadata;
  return {
    ...(node.apiVersion === undefined ? {} : { apiVersion: node.apiVersion }),
    ...(node.kind === undefined ? {} : { kind: node.kind }),
    metadata: {
      name: m.name,
      ...(m.uid === undefined ? {} : { uid: m.uid }),
      ...(m.resourceVersion === undefined ? {} : { resourceVersion: m.resourceVersion }),
    },
  };
}

/** Starts an informer on Kubernetes Nodes whose cache holds {@link slimNode} copies. */
export function createNodeInformer(
  options: Omit<InformerOptions<KubeNode>, "resource" | "transform">,
): Informer<KubeNode> {
  return createInformer<KubeNode>({ ...options, resource: KubeResources.nodes, transform: slimNode });
}

/** Kubernetes Nodes as the controller reads them: an informer's cache and sync state. */
export interface NodeControllerNodeSource {
  readonly cache: { has(key: string): boolean };
  hasSynced(): boolean;
}

/** Pods as the controller reads them (to keep endpoints of pods that still exist). */
export interface NodeControllerPodSource {
  readonly cache: { get(key: string): KubePod | undefined };
  hasSynced(): boolean;
}

/** Options of {@link createNodeController}. */
export interface NodeControllerOptions {
  /** Margay Nodes and WorkloadEndpoints live here. */
  readonly datastore: Datastore;
  /** Releases block affinities. */
  readonly ipam: Ipam;
  /**
   * The API server: the controller runs its own informer on Nodes (exposed as `nodes`). Give either
   * this or `nodes`.
   */
  readonly transport?: KubeTransport | undefined;
  /**
   * An informer on Nodes the caller runs; its events must reach {@link NodeController.onNodeEvent}
   * (the periodic resync catches deletions regardless).
   */
  readonly nodes?: NodeControllerNodeSource | undefined;
  /**
   * Pods of the cluster: endpoints of the deleted node whose pods still exist are kept (the pod
   * controller and the agent own them). Without it every k8s endpoint of the node is kept and the IPAM
   * GC's endpoint signal keeps their addresses.
   */
  readonly pods?: NodeControllerPodSource | undefined;
  /** Called after a Margay Node was removed (wire to the IPAM GC's `nodeDeleted`). */
  readonly onNodeDeleted?: ((node: string) => void) | undefined;
  /** Interval of the periodic resync, ms. Default 5 minutes. */
  readonly resyncIntervalMs?: number | undefined;
  /** Metrics are registered here. Default: a private registry. */
  readonly registry?: Registry | undefined;
  /** Structured logger. Default silent. */
  readonly logger?: Logger | undefined;
  /** Aborting stops the controller (as `close`). */
  readonly signal?: AbortSignal | undefined;
}

/** What one removal did. */
export interface NodeRemoval {
  /** The Kubernetes Node. */
  readonly kubeNode: string;
  /** The Margay Node removed. */
  readonly node: string;
  /** WorkloadEndpoints removed (`namespace/name`). */
  readonly endpoints: readonly string[];
  /** Empty blocks whose affinity was released. */
  readonly blocks: readonly string[];
}

/** The running node controller. */
export interface NodeController {
  /** The Kubernetes Nodes followed (its own informer, or the source given). */
  readonly nodes: NodeControllerNodeSource;
  /** Starts the informer (if its own) and the periodic resync (idempotent). */
  start(): void;
  /** Feeds an informer event (deletions start a removal). */
  onNodeEvent(event: InformerEvent<KubeNode>): void;
  /** Handles a Kubernetes Node deletion now. */
  nodeDeleted(kubeNode: string, options?: { signal?: AbortSignal }): Promise<NodeRemoval[]>;
  /** One resync now: removes Nodes whose `orchRefs` name a Kubernetes Node that does not exist. */
  resync(options?: { signal?: AbortSignal }): Promise<NodeRemoval[]>;
  /** Resolves when the work queued so far is done (tests). */
  idle(): Promise<void>;
  /** Stops everything; waits for work in progress. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The Kubernetes Node a Margay Node names in its `orchRefs`, if any. */
export function kubeNodeOf(node: Pick<Node, "spec">): string | undefined {
  const ref = node.spec?.orchRefs?.find((r) => r.orchestrator === ORCHESTRATOR_KUBERNETES);
  return ref === undefined ? undefined : ref.nodeName || undefined;
}

/** Resolves once `source` has synced (polled: a plain source has no event for it). */
async function untilSynced(source: NodeControllerNodeSource, signal: AbortSignal): Promise<void> {
  while (!source.hasSynced()) {
    if (signal.aborted) throw signal.reason;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Creates the node controller; `start()` runs it. */
export function createNodeController(options: NodeControllerOptions): NodeController {
  const { datastore, ipam, pods } = options;
  const log = (options.logger ?? silentLogger).child({ component: "node-controller" });
  const resyncMs = options.resyncIntervalMs ?? DEFAULT_NODE_RESYNC_INTERVAL_MS;
  if (!(resyncMs > 0) || !Number.isFinite(resyncMs)) {
    throw new RangeError(`resyncIntervalMs must be a finite number > 0, got ${String(resyncMs)}`);
  }
  const registers = options.registry ? [options.registry] : [];
  const m = {
    nodes: new Counter({
      name: "margay_node_controller_nodes_removed_total",
      help: "Margay Nodes removed because their Kubernetes Node was deleted",
      registers,
    }),
    endpoints: new Counter({
      name: "margay_node_controller_endpoints_removed_total",
      help: "WorkloadEndpoints of removed nodes whose pods no longer exist, removed",
      registers,
    }),
    adopted: new Counter({
      name: "margay_node_controller_nodes_adopted_total",
      help: "Margay Nodes without orchRefs recorded as the Kubernetes Node of their name",
      registers,
    }),
    failures: new Counter({
      name: "margay_node_controller_failures_total",
      help: "Node removals that failed (retried by the next resync)",
      registers,
    }),
  };

  const closing = new AbortController();
  const onAbort = () => closing.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });

  let own: Informer<KubeNode> | undefined;
  const transport = options.transport;
  if (options.nodes === undefined && transport === undefined) {
    throw new TypeError("createNodeController needs transport or nodes");
  }
  // Its own informer starts with `start()`; until then it reads as empty and not synced.
  const source: NodeControllerNodeSource = options.nodes ?? {
    cache: { has: (key) => own?.cache.has(key) ?? false },
    hasSynced: () => own?.hasSynced() ?? false,
  };

  // One queue: removals and resyncs never interleave.
  let chain: Promise<unknown> = Promise.resolve();
  const enqueue = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = chain.then(fn);
    chain = run.catch(() => {});
    return run;
  };
  let timer: NodeJS.Timeout | undefined;
  let started = false;

  const sig = (s: AbortSignal | undefined) => (s ? AbortSignal.any([s, closing.signal]) : closing.signal);

  /** Removes one Margay Node standing for the deleted Kubernetes Node, if it still reads the same. */
  async function removeNode(
    kubeNode: string,
    node: Node,
    signal: AbortSignal,
  ): Promise<NodeRemoval | undefined> {
    const name = node.metadata.name;
    if (source.cache.has(kubeNode)) return undefined; // registered again meanwhile
    try {
      await datastore.delete(
        { kind: "Node", name },
        { resourceVersion: node.metadata.resourceVersion!, signal },
      );
    } catch (e) {
      if (isDatastoreError(e, "not-found")) return undefined;
      if (isDatastoreError(e, "conflict")) {
        // Written since we read it (the agent re-registering, an operator): decide on the new state.
        log.info({ node: name, kubeNode }, "node changed while being removed; looking again");
        return undefined;
      }
      throw e;
    }
    m.nodes.inc();
    log.info({ node: name, kubeNode }, "removed the node of a deleted Kubernetes Node");
    try {
      await datastore.delete({ kind: "NodeStatus", name }, { signal });
    } catch (e) {
      if (!isDatastoreError(e, "not-found")) log.warn({ err: e, node: name }, "cannot remove NodeStatus");
    }
    const endpoints = await removeEndpoints(name, signal);
    const r = await ipam.releaseHostAffinities(name, { requireEmpty: true, signal });
    if (r.released.length > 0) log.info({ node: name, blocks: r.released }, "released empty blocks");
    options.onNodeDeleted?.(name);
    return { kubeNode, node: name, endpoints, blocks: r.released };
  }

  /** Removes the node's Kubernetes endpoints whose pods no longer exist. */
  async function removeEndpoints(node: string, signal: AbortSignal): Promise<string[]> {
    if (pods === undefined || !pods.hasSynced()) return [];
    const all = await datastore.list<WorkloadEndpoint>("WorkloadEndpoint", { signal });
    const out: string[] = [];
    for (const w of all.items) {
      if (w.spec.node !== node || w.spec.orchestrator !== ORCHESTRATOR_KUBERNETES) continue;
      const ns = w.metadata.namespace;
      if (!w.spec.pod || !ns || pods.cache.get(`${ns}/${w.spec.pod}`) !== undefined) continue;
      try {
        await datastore.delete(
          { kind: "WorkloadEndpoint", namespace: ns, name: w.metadata.name },
          { resourceVersion: w.metadata.resourceVersion!, signal },
        );
        out.push(`${ns}/${w.metadata.name}`);
        m.endpoints.inc();
      } catch (e) {
        if (!isDatastoreError(e, "not-found", "conflict")) throw e;
      }
    }
    if (out.length > 0) log.info({ node, endpoints: out.length }, "removed endpoints of gone pods");
    return out;
  }

  async function removeFor(kubeNode: string, byName: boolean, signal: AbortSignal): Promise<NodeRemoval[]> {
    const all = await datastore.list<Node>("Node", { signal });
    const out: NodeRemoval[] = [];
    for (const n of all.items) {
      const ref = kubeNodeOf(n);
      const match =
        ref === kubeNode ||
        (byName && ref === undefined && !n.spec?.orchRefs?.length && n.metadata.name === kubeNode);
      if (!match) continue;
      try {
        const r = await removeNode(kubeNode, n, signal);
        if (r) out.push(r);
      } catch (e) {
        m.failures.inc();
        log.warn({ err: e, node: n.metadata.name, kubeNode }, "node removal failed; the resync retries");
      }
    }
    return out;
  }

  /**
   * Records on a Margay Node without `orchRefs` that it stands for the Kubernetes Node of its name (CAS on
   * the revision read; the agent keeps fields it does not own), so a resync can later catch its deletion.
   */
  async function adopt(n: Node, signal: AbortSignal): Promise<boolean> {
    const name = n.metadata.name;
    if ((n.spec?.orchRefs?.length ?? 0) > 0 || !source.cache.has(name)) return false;
    try {
      await datastore.update<Node>(
        { ...n, spec: { ...n.spec, orchRefs: [{ orchestrator: ORCHESTRATOR_KUBERNETES, nodeName: name }] } },
        { signal },
      );
    } catch (e) {
      if (isDatastoreError(e, "not-found", "conflict")) return false; // changed: the next resync looks again
      throw e;
    }
    m.adopted.inc();
    log.info({ node: name }, "node recorded as the Kubernetes Node of its name");
    return true;
  }

  async function adoptByName(name: string, signal: AbortSignal): Promise<void> {
    try {
      await adopt(await datastore.get<Node>({ kind: "Node", name }, { signal }), signal);
    } catch (e) {
      if (!isDatastoreError(e, "not-found")) throw e;
    }
  }

  async function resyncNow(signal: AbortSignal): Promise<NodeRemoval[]> {
    if (!source.hasSynced()) return [];
    const all = await datastore.list<Node>("Node", { signal });
    const out: NodeRemoval[] = [];
    for (const n of all.items) {
      const ref = kubeNodeOf(n);
      if (ref === undefined) {
        await adopt(n, signal);
        continue;
      }
      if (source.cache.has(ref)) continue;
      try {
        const r = await removeNode(ref, n, signal);
        if (r) out.push(r);
      } catch (e) {
        m.failures.inc();
        log.warn({ err: e, node: n.metadata.name, kubeNode: ref }, "node removal failed; the resync retries");
      }
    }
    return out;
  }

  function schedule(): void {
    if (closing.signal.aborted) return;
    timer = setTimeout(() => {
      enqueue(() => resyncNow(closing.signal))
        .catch((e) => {
          if (!closing.signal.aborted) log.warn({ err: e }, "node resync failed");
        })
        .finally(schedule);
    }, resyncMs);
    timer.unref?.();
  }

  const controller: NodeController = {
    get nodes() {
      return source;
    },
    start() {
      if (started || closing.signal.aborted) return;
      started = true;
      if (options.nodes === undefined && transport !== undefined) {
        own = createNodeInformer({
          transport,
          logger: log,
          signal: closing.signal,
          onEvent: (e) => controller.onNodeEvent(e),
        });
      }
      // The first resync runs once the nodes have synced: deletions missed while no controller ran.
      const synced = own ? own.waitForSync({ signal: closing.signal }) : untilSynced(source, closing.signal);
      synced.then(
        () =>
          enqueue(() => resyncNow(closing.signal)).catch((e) => {
            if (!closing.signal.aborted) log.warn({ err: e }, "node resync failed");
          }),
        () => {},
      );
      schedule();
    },
    onNodeEvent(event) {
      const name = event.object.metadata.name;
      if (event.type === "added") {
        enqueue(() => adoptByName(name, closing.signal)).catch((e) => {
          if (!closing.signal.aborted) log.warn({ err: e, node: name }, "cannot record the node's orchRefs");
        });
        return;
      }
      if (event.type !== "deleted") return;
      log.info({ kubeNode: name, fromRelist: event.fromRelist }, "Kubernetes Node deleted");
      enqueue(() => removeFor(name, true, closing.signal)).catch((e) => {
        if (!closing.signal.aborted) log.warn({ err: e, kubeNode: name }, "node removal failed");
      });
    },
    nodeDeleted(kubeNode, opts = {}) {
      return enqueue(() => removeFor(kubeNode, true, sig(opts.signal)));
    },
    resync(opts = {}) {
      return enqueue(() => resyncNow(sig(opts.signal)));
    },
    async idle() {
      await chain;
    },
    async close() {
      closing.abort();
      options.signal?.removeEventListener("abort", onAbort);
      if (timer) clearTimeout(timer);
      await own?.close();
      await chain;
    },
    async [Symbol.asyncDispose]() {
      await this.close();
    },
  };
  return controller;
}
