/**
 * The controllers' IPAM garbage collector: frees addresses whose pods are gone (leaks left by runtimes
 * that skip CNI DEL, by nodes that died), after Calico kube-controllers' IPAM controller
 * (`kube-controllers/pkg/controllers/node/ipam.go`).
 *
 * An allocation is a leak only when every signal agrees that nothing uses it:
 * - **pod**: the Kubernetes API has no pod that holds it: the pod its attributes name (`namespace`,
 *   `pod`) is absent, runs on another node than the allocation's, was evicted, or reports other
 *   addresses (a pod whose addresses are not reported yet holds it);
 * - **endpoint**: no WorkloadEndpoint in the datastore holds it (by the IPAM handle its container and
 *   interface derive, or by address);
 * - **node**: its node does not hold it: a tunnel address is held while the Node it belongs to exists,
 *   and an allocation of unknown source (no pod attributes) is always taken as held, as Calico does.
 *
 * A leak is freed only once it has stayed a leak for the grace period (default 15 minutes, Calico's
 * `leakGracePeriod`), counted from the first pass that saw it (so a restarted or newly elected
 * controller waits a whole grace period again) and from its allocation time; every address of its
 * handle must be a confirmed leak (a handle is freed all or nothing), and the pod is read once more
 * from the API right before the release when a reader is given. The release is exact: each address
 * is released under its handle and allocation sequence number, so an address handed out again since
 * the pass read it is never freed. During a dry-run window after start, what would be freed is logged
 * and counted, never released.
 *
 * Nodes gone (no Margay Node, and no Kubernetes Node when a node source is given) lose the affinities
 * of their empty blocks: at once when the node controller reports the deletion, else once the node has
 * been missing for the grace period. Blocks still holding addresses stay affine until their addresses
 * are freed (Calico's `ReleaseHostAffinities(..., mustBeEmpty=true)`). A node that registers again
 * under the same name keeps every allocation still in use: only leaks are ever freed.
 *
 * @packageDocumentation
 */
import { type Logger, type Node, silentLogger, type WorkloadEndpoint } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import {
  affinityNode,
  allocationNode,
  formatIp,
  type Ipam,
  type IpamBlockObject,
  IpamKind,
  ordinalAddress,
  parseCidr,
} from "@margay/ipam";
import type { KubePod } from "@margay/kube-adapter";
import { Counter, Gauge, type Registry } from "prom-client";
import { IFNAME_ANNOTATION, workloadHandleId } from "../node/workload/endpoint.js";
import { kubeNodeOf } from "./node-controller.js";

/** Calico's default `leakGracePeriod`: 15 minutes. */
export const DEFAULT_IPAM_GC_GRACE_PERIOD_MS = 15 * 60_000;
/** Default dry-run window after start: 5 minutes. */
export const DEFAULT_IPAM_GC_DRY_RUN_PERIOD_MS = 5 * 60_000;
/** Longest default interval between passes (Calico: half the grace period, 5 minutes by default). */
const MAX_DEFAULT_INTERVAL_MS = 5 * 60_000;

/** Where the GC reads pods: an informer on pods (its cache and sync state). */
export interface IpamGcPodSource {
  readonly cache: { get(key: string): KubePod | undefined };
  hasSynced(): boolean;
}

/** Where the GC reads Kubernetes Nodes: an informer on nodes (its cache and sync state). */
export interface IpamGcNodeSource {
  readonly cache: { has(key: string): boolean };
  hasSynced(): boolean;
}

/** Options of {@link createIpamGc}. */
export interface IpamGcOptions {
  /** Blocks, WorkloadEndpoints and Nodes are read here. */
  readonly datastore: Datastore;
  /** Releases go through this client. */
  readonly ipam: Ipam;
  /** Pods of the cluster (the informer cache). No pass runs before it has synced. */
  readonly pods: IpamGcPodSource;
  /**
   * Kubernetes Nodes. When given, a node counts as gone only when it is missing from both the
   * datastore and this source (and no pass runs before it has synced). Default: the datastore alone.
   */
  readonly nodes?: IpamGcNodeSource | undefined;
  /**
   * Reads one pod straight from the API server (`undefined` when it does not exist), for the last
   * check before a release, as Calico re-reads the pod when its node still exists. Errors keep the
   * allocation. Default: the cache only.
   */
  readonly getPod?:
    | ((namespace: string, name: string, options: { signal?: AbortSignal }) => Promise<KubePod | undefined>)
    | undefined;
  /** How long an allocation must stay a leak before it is freed, ms. Default 15 minutes. */
  readonly gracePeriodMs?: number | undefined;
  /** After start, passes only log and count what they would free for this long, ms. Default 5 minutes. */
  readonly dryRunPeriodMs?: number | undefined;
  /** Interval between periodic passes, ms. Default half the grace period, at most 5 minutes. */
  readonly intervalMs?: number | undefined;
  /** Metrics are registered here. Default: a private registry (metrics not exported). */
  readonly registry?: Registry | undefined;
  /** Structured logger. Default silent. */
  readonly logger?: Logger | undefined;
  /** Clock, ms since the epoch. Default `Date.now`. */
  readonly now?: (() => number) | undefined;
  /** Aborting stops the periodic loop (as `close`). */
  readonly signal?: AbortSignal | undefined;
}

/** One handle's addresses, released (or, in dry run, that would be). */
export interface IpamGcRelease {
  readonly handleId: string;
  readonly ips: readonly string[];
}

/** What one pass found and did. */
export interface IpamGcPassResult {
  /** Why the pass did nothing (informers not synced yet). */
  readonly skipped?: "not-synced" | undefined;
  /** True while inside the dry-run window: nothing was released. */
  readonly dryRun: boolean;
  /** Allocations seen. */
  readonly allocations: number;
  /** Allocations no signal holds (leak candidates, inside or past the grace period). */
  readonly candidates: number;
  /** Candidates past the grace period. */
  readonly confirmed: number;
  /** Handles freed. */
  readonly released: readonly IpamGcRelease[];
  /** Handles that would have been freed (dry run). */
  readonly wouldRelease: readonly IpamGcRelease[];
  /** Block affinities dropped, per gone node (dry run: that would have been). */
  readonly affinitiesReleased: readonly { node: string; blocks: readonly string[] }[];
}

/** The running garbage collector. */
export interface IpamGc {
  /** Starts the periodic loop (idempotent). */
  start(): void;
  /** Runs one pass now (after any pass in progress). */
  runOnce(options?: { signal?: AbortSignal }): Promise<IpamGcPassResult>;
  /** Asks for a pass soon (a change that may have made leaks, e.g. a pod or node deleted). */
  trigger(reason: string): void;
  /** Told by the node controller that it removed this node: its empty blocks are released at once. */
  nodeDeleted(node: string): void;
  /** Whether passes are still in the dry-run window. */
  readonly dryRun: boolean;
  /** Stops the loop; waits for a pass in progress. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** One allocation seen in a pass. */
interface Allocation {
  readonly id: string;
  readonly ip: string;
  readonly block: string;
  readonly handleId: string;
  readonly sequenceNumber: number | undefined;
  readonly node: string | undefined;
  readonly attrs: Readonly<Record<string, string>>;
  readonly allocatedAt: number | undefined;
}

const isTunnel = (a: Allocation) => /TunnelAddress$/.test(a.attrs.type ?? "");

function podIps(pod: KubePod): string[] {
  const list = pod.status?.podIPs?.map((p) => p.ip) ?? [];
  if (list.length === 0 && pod.status?.podIP) list.push(pod.status.podIP);
  return list;
}

/**
 * Whether an existing pod still holds the allocation (Calico's `allocationIsValid` once the pod is
 * found). `kubeNode` is the Kubernetes name of the allocation's node (its Node's `orchRefs`, else its
 * own name), undefined when its Node no longer exists (then the node is not compared, as Calico).
 */
function podHolds(pod: KubePod, a: Allocation, kubeNode: string | undefined): boolean {
  const podNode = pod.spec?.nodeName;
  // Rescheduled to another node: the old node's allocation is no longer the pod's.
  if (podNode && kubeNode && podNode !== kubeNode) return false;
  const status = pod.status as (KubePod["status"] & { reason?: string }) | undefined;
  if (status?.phase === "Failed" && status.reason === "Evicted") return false;
  const ips = podIps(pod);
  // Addresses not reported yet (kubelet writes them after CNI ADD): the pod may still be using it.
  if (ips.length === 0) return true;
  return ips.some((ip) => ip === a.ip);
}

function validDuration(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
    throw new RangeError(`${name} must be a finite number >= 0, got ${String(v)}`);
  }
  return v;
}

/**
 * Creates the IPAM garbage collector (see the module comment for the rules). Call `start()` for the
 * periodic loop, or `runOnce()` to drive it.
 */
export function createIpamGc(options: IpamGcOptions): IpamGc {
  const { datastore, ipam, pods, nodes, getPod } = options;
  const graceMs = validDuration("gracePeriodMs", options.gracePeriodMs, DEFAULT_IPAM_GC_GRACE_PERIOD_MS);
  const dryRunMs = validDuration("dryRunPeriodMs", options.dryRunPeriodMs, DEFAULT_IPAM_GC_DRY_RUN_PERIOD_MS);
  const intervalMs = validDuration(
    "intervalMs",
    options.intervalMs,
    Math.max(1000, Math.min(MAX_DEFAULT_INTERVAL_MS, graceMs / 2)),
  );
  const now = options.now ?? Date.now;
  const log = (options.logger ?? silentLogger).child({ component: "ipam-gc" });
  const registers = options.registry ? [options.registry] : [];
  const m = {
    candidates: new Gauge({
      name: "margay_ipam_gc_leak_candidates",
      help: "Allocations no signal holds (no pod, no endpoint, not held by their node), in or past the grace period",
      registers,
    }),
    found: new Counter({
      name: "margay_ipam_gc_leaks_found_total",
      help: "Allocations that became leak candidates",
      registers,
    }),
    released: new Counter({
      name: "margay_ipam_gc_addresses_released_total",
      help: "Leaked addresses freed",
      registers,
    }),
    dryRun: new Counter({
      name: "margay_ipam_gc_dry_run_addresses_total",
      help: "Leaked addresses a dry-run pass would have freed",
      registers,
    }),
    affinities: new Counter({
      name: "margay_ipam_gc_affinities_released_total",
      help: "Block affinities of gone nodes released",
      registers,
    }),
    passes: new Counter({
      name: "margay_ipam_gc_passes_total",
      help: "GC passes by result",
      labelNames: ["result"] as const,
      registers,
    }),
  };

  const startedAt = now();
  /** Allocation id → when a pass first saw it as a candidate. */
  const candidateSince = new Map<string, number>();
  /** Gone node → since when it has been seen gone. */
  const nodeGoneSince = new Map<string, number>();
  /** Nodes the node controller removed (released without waiting). */
  const deletedNodes = new Set<string>();

  const closing = new AbortController();
  const onAbort = () => closing.abort();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  let chain: Promise<unknown> = Promise.resolve();
  let loop: Promise<void> | undefined;
  let wake: (() => void) | undefined;
  let kicked = false;

  const inDryRun = () => now() - startedAt < dryRunMs;

  async function listAll<T extends { kind: string }>(kind: string, signal: AbortSignal): Promise<T[]> {
    return (await datastore.list(kind, { signal })).items as unknown as T[];
  }

  async function pass(signal: AbortSignal): Promise<IpamGcPassResult> {
    const dryRun = inDryRun();
    const empty = {
      dryRun,
      allocations: 0,
      candidates: 0,
      confirmed: 0,
      released: [],
      wouldRelease: [],
      affinitiesReleased: [],
    };
    if (!pods.hasSynced() || (nodes !== undefined && !nodes.hasSynced())) {
      return { ...empty, skipped: "not-synced" };
    }
    const [blocks, weps, ourNodes] = await Promise.all([
      listAll<IpamBlockObject>(IpamKind.Block, signal),
      listAll<WorkloadEndpoint>("WorkloadEndpoint", signal),
      listAll<Node>("Node", signal),
    ]);
    /** Margay Node → its Kubernetes name. */
    const kubeNames = new Map(ourNodes.map((n) => [n.metadata.name, kubeNodeOf(n) ?? n.metadata.name]));
    const nodeNames = new Set(kubeNames.keys());
    const nodeExists = (n: string) => nodeNames.has(n) || (nodes?.cache.has(n) ?? false);

    // What endpoints hold: their handles and their addresses.
    const wepHandles = new Set<string>();
    const wepIps = new Set<string>();
    for (const w of weps) {
      const ifName = w.metadata.annotations?.[IFNAME_ANNOTATION];
      if (w.spec.containerID && ifName) wepHandles.add(workloadHandleId(w.spec.containerID, ifName));
      for (const n of w.spec.ipNetworks ?? []) wepIps.add(n.split("/")[0]!);
    }

    const allocations: Allocation[] = [];
    const affineNodes = new Set<string>();
    for (const b of blocks) {
      const owner = affinityNode(b.spec.affinity);
      if (owner !== undefined) affineNodes.add(owner);
      let cidr: ReturnType<typeof parseCidr>;
      try {
        cidr = parseCidr(b.spec.cidr);
      } catch {
        continue; // a malformed block is `check`'s finding, not the GC's to touch
      }
      b.spec.allocations.forEach((idx, ord) => {
        if (idx === null) return;
        const attr = b.spec.attributes[idx];
        if (!attr || attr.handleId === null) return; // without a handle nothing can release it exactly
        const seq = b.spec.sequenceNumberForAllocation[String(ord)];
        allocations.push({
          id: `${b.spec.cidr}#${ord}#${seq ?? ""}#${attr.handleId}`,
          ip: formatIp(cidr.version, ordinalAddress(cidr, ord)),
          block: b.spec.cidr,
          handleId: attr.handleId,
          sequenceNumber: seq,
          node: allocationNode(b.spec, attr),
          attrs: attr.secondary ?? {},
          allocatedAt: attr.allocatedAt,
        });
      });
    }

    const held = (a: Allocation): boolean => {
      if (wepHandles.has(a.handleId) || wepIps.has(a.ip)) return true;
      if (isTunnel(a)) return a.node === undefined || nodeExists(a.node);
      const { namespace, pod } = a.attrs;
      if (!namespace || !pod) return true; // unknown source: never ours to free
      const p = pods.cache.get(`${namespace}/${pod}`);
      return p !== undefined && podHolds(p, a, a.node === undefined ? undefined : kubeNames.get(a.node));
    };

    const t = now();
    const seen = new Set<string>();
    const byHandle = new Map<string, { all: Allocation[]; confirmed: number }>();
    let candidates = 0;
    let confirmed = 0;
    for (const a of allocations) {
      let h = byHandle.get(a.handleId);
      if (!h) byHandle.set(a.handleId, (h = { all: [], confirmed: 0 }));
      h.all.push(a);
      if (held(a)) continue;
      seen.add(a.id);
      candidates++;
      let since = candidateSince.get(a.id);
      if (since === undefined) {
        candidateSince.set(a.id, (since = t));
        m.found.inc();
        log.info({ ip: a.ip, handleId: a.handleId, node: a.node, pod: a.attrs.pod }, "leak candidate");
      }
      const old = a.allocatedAt === undefined || t - a.allocatedAt >= graceMs;
      if (t - since >= graceMs && old) {
        confirmed++;
        h.confirmed++;
      }
    }
    // Held again (resurrected) or gone: forget.
    for (const id of candidateSince.keys()) if (!seen.has(id)) candidateSince.delete(id);

    const released: IpamGcRelease[] = [];
    const wouldRelease: IpamGcRelease[] = [];
    for (const [handleId, h] of byHandle) {
      if (h.confirmed === 0 || h.confirmed !== h.all.length) continue; // all or nothing per handle
      if (getPod !== undefined && (await resurrected(h.all, (n) => kubeNames.get(n), signal))) {
        for (const a of h.all) candidateSince.delete(a.id);
        continue;
      }
      const ips = h.all.map((a) => a.ip);
      if (dryRun) {
        wouldRelease.push({ handleId, ips });
        m.dryRun.inc(ips.length);
        log.info({ handleId, ips }, "dry run: would free leaked addresses");
        continue;
      }
      const r = await ipam.releaseIPs(
        h.all.map((a) => ({ ip: a.ip, handleId, sequenceNumber: a.sequenceNumber })),
        { signal },
      );
      const freed = r.released.map((x) => x.ip);
      for (const a of h.all) candidateSince.delete(a.id);
      if (freed.length > 0) {
        released.push({ handleId, ips: freed });
        m.released.inc(freed.length);
        log.info({ handleId, ips: freed, node: h.all[0]!.node }, "freed leaked addresses");
      }
      if (r.skipped.length > 0)
        log.info({ handleId, skipped: r.skipped }, "leak changed since read; left alone");
    }

    m.candidates.set(candidates - released.reduce((n, r) => n + r.ips.length, 0));

    // Gone nodes: release the affinities of their empty blocks.
    const affinitiesReleased: { node: string; blocks: string[] }[] = [];
    for (const n of nodeGoneSince.keys()) if (!affineNodes.has(n) || nodeExists(n)) nodeGoneSince.delete(n);
    // Registered again, or nothing of it left to release.
    for (const n of deletedNodes) if (nodeExists(n) || !affineNodes.has(n)) deletedNodes.delete(n);
    for (const n of affineNodes) {
      if (nodeExists(n)) continue;
      let since = nodeGoneSince.get(n);
      if (since === undefined) nodeGoneSince.set(n, (since = t));
      if (!deletedNodes.has(n) && t - since < graceMs) continue;
      if (dryRun) {
        const blocksOf = blocks
          .filter((b) => affinityNode(b.spec.affinity) === n && b.spec.allocations.every((x) => x === null))
          .map((b) => b.spec.cidr);
        if (blocksOf.length > 0) {
          affinitiesReleased.push({ node: n, blocks: blocksOf });
          log.info({ node: n, blocks: blocksOf }, "dry run: would release empty blocks of a gone node");
        }
        continue;
      }
      const r = await ipam.releaseHostAffinities(n, { requireEmpty: true, signal });
      if (r.released.length > 0) {
        affinitiesReleased.push({ node: n, blocks: r.released });
        m.affinities.inc(r.released.length);
        log.info({ node: n, blocks: r.released }, "released the empty blocks of a gone node");
      }
    }

    return {
      dryRun,
      allocations: allocations.length,
      candidates,
      confirmed,
      released,
      wouldRelease,
      affinitiesReleased,
    };
  }

  /** The final check against the API server: true when some pod of the handle holds it after all. */
  async function resurrected(
    all: readonly Allocation[],
    kubeName: (node: string) => string | undefined,
    signal: AbortSignal,
  ): Promise<boolean> {
    for (const a of all) {
      const { namespace, pod } = a.attrs;
      if (!namespace || !pod) continue;
      try {
        const p = await getPod!(namespace, pod, { signal });
        if (p !== undefined && podHolds(p, a, a.node === undefined ? undefined : kubeName(a.node))) {
          log.info(
            { ip: a.ip, handleId: a.handleId, pod: `${namespace}/${pod}` },
            "leak candidate resurrected",
          );
          return true;
        }
      } catch (e) {
        log.warn({ err: e, pod: `${namespace}/${pod}` }, "cannot read pod; allocation kept");
        return true;
      }
    }
    return false;
  }

  function runOnce(opts: { signal?: AbortSignal } = {}): Promise<IpamGcPassResult> {
    const signal = opts.signal ? AbortSignal.any([opts.signal, closing.signal]) : closing.signal;
    const run = chain.then(() => pass(signal));
    chain = run.then(
      (r) => m.passes.inc({ result: r.skipped ?? "ok" }),
      () => m.passes.inc({ result: "error" }),
    );
    return run;
  }

  async function runLoop(): Promise<void> {
    while (!closing.signal.aborted) {
      kicked = false;
      try {
        const r = await runOnce();
        if (r.skipped) log.debug({ reason: r.skipped }, "pass skipped");
      } catch (e) {
        if (closing.signal.aborted) break;
        log.warn({ err: e }, "IPAM GC pass failed");
      }
      if (closing.signal.aborted || kicked) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, intervalMs);
        function done() {
          clearTimeout(timer);
          closing.signal.removeEventListener("abort", done);
          wake = undefined;
          resolve();
        }
        wake = done;
        closing.signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  return {
    start() {
      if (loop === undefined && !closing.signal.aborted) {
        log.info({ gracePeriodMs: graceMs, dryRunPeriodMs: dryRunMs, intervalMs }, "IPAM GC started");
        loop = runLoop();
      }
    },
    runOnce,
    trigger(reason) {
      log.debug({ reason }, "pass requested");
      kicked = true;
      wake?.();
    },
    nodeDeleted(node) {
      deletedNodes.add(node);
      kicked = true;
      wake?.();
    },
    get dryRun() {
      return inDryRun();
    },
    async close() {
      closing.abort();
      options.signal?.removeEventListener("abort", onAbort);
      await loop;
      await chain.catch(() => {});
    },
    async [Symbol.asyncDispose]() {
      await this.close();
    },
  };
}
