/**
 * What the workload API does, without HTTP: add, del, check, status and node-scoped gc over injected
 * IPAM, plumber, datastore and pipeline. Serialises per container id and per endpoint; runs different
 * pods in parallel; rolls back every step of a failed add.
 *
 * @packageDocumentation
 */
import { stat } from "node:fs/promises";
import { isIPv6 } from "node:net";
import type { Logger, WorkloadEndpoint } from "@margay/api";
import {
  WORKLOAD_GATEWAY_V4,
  WORKLOAD_GATEWAY_V6,
  isDataplaneError,
  pathNetns,
  type WorkloadPlumber,
} from "@margay/dataplane";
import { type Datastore, isDatastoreError } from "@margay/datastore";
import {
  type AllocationAttributes,
  type Ipam,
  type IpPoolResource,
  defaultNodeSelectorMatches,
  isIpamError,
  normalizePool,
} from "@margay/ipam";
import type { DataplanePipeline } from "../context.js";
import {
  type AttachmentIdentity,
  type EndpointContent,
  IFNAME_ANNOTATION,
  recordedMtu,
  WORKLOAD_HANDLE_PREFIX,
  attachmentIdentity,
  buildWorkloadEndpoint,
  hostNetwork,
  ifaceOfEndpoint,
  sameEndpoint,
  workloadHandleId,
} from "./endpoint.js";
import { WorkloadApiError, WorkloadErrorCode, isWorkloadApiError } from "./errors.js";
import type { AddStep, DelStep, WorkloadMetrics } from "./metrics.js";
import type {
  WorkloadAddReply,
  WorkloadCheckReply,
  WorkloadDelReply,
  WorkloadGcReply,
  WorkloadGcRequest,
  WorkloadStatusReply,
} from "./protocol.js";
import type { ValidAddRequest, ValidDelRequest } from "./validate.js";

const KIND = "WorkloadEndpoint";
/** Rollback and clean-up get their own time: the request's deadline may be what failed. */
const CLEANUP_MS = 15_000;

/** What the service needs. */
export interface WorkloadServiceOptions {
  readonly nodeName: string;
  readonly datastore: Datastore;
  readonly pipeline: Pick<DataplanePipeline, "inSync" | "waitForEndpoint">;
  readonly ipam: Ipam;
  readonly plumber: WorkloadPlumber;
  /**
   * Veth MTU unless a request asks for another; a getter is read at each request (the agent's MTU follows
   * the pools' encapsulation).
   */
  readonly mtu: number | (() => number);
  readonly logger: Logger;
  readonly metrics?: WorkloadMetrics | undefined;
  /** gc leaves allocations and endpoints younger than this alone (an add in flight). Default 60 000. */
  readonly gcGracePeriodMs?: number | undefined;
  /** Whether a netns path exists. Default: `stat`. */
  readonly netnsExists?: ((path: string) => Promise<boolean>) | undefined;
  readonly now?: (() => number) | undefined;
  /**
   * Kubernetes mode: called at each add before anything is taken; may change the request (pools and
   * addresses asked for by annotation, the pod's labels) and adds endpoint fields. A failure fails the
   * add (nothing is written without what it returns).
   */
  readonly enrichAdd?:
    | ((req: ValidAddRequest, signal: AbortSignal) => Promise<WorkloadAddEnrichment | undefined>)
    | undefined;
}

/** What an {@link WorkloadServiceOptions.enrichAdd} hook returns. */
export interface WorkloadAddEnrichment {
  /** The request to carry out instead. */
  readonly request: ValidAddRequest;
  /** Endpoint fields beyond the request's. */
  readonly endpoint: Pick<EndpointContent, "profiles" | "serviceAccountName" | "ports">;
}

/** The workload API's operations. */
export interface WorkloadService {
  add(req: ValidAddRequest, signal: AbortSignal): Promise<WorkloadAddReply>;
  del(req: ValidDelRequest, signal: AbortSignal): Promise<WorkloadDelReply>;
  check(req: ValidAddRequest, signal: AbortSignal): Promise<WorkloadCheckReply>;
  gc(req: WorkloadGcRequest, signal: AbortSignal): Promise<WorkloadGcReply>;
  status(): WorkloadStatusReply;
  /** Refuse new adds (`shutting-down`); in-flight requests finish. */
  drain(): void;
  /** Requests in progress. */
  readonly inFlight: number;
}

/**
 * A lock per key; several keys are taken in sorted order, so two holders never wait on each other.
 * Waiting honours the request's signal: an aborted waiter gives up at once, and its place in the queue
 * passes on as soon as its turn comes.
 */
function createKeyedLock() {
  const tails = new Map<string, Promise<void>>();
  const one = (key: string, signal: AbortSignal): Promise<() => void> =>
    new Promise((resolve, reject) => {
      const prev = tails.get(key) ?? Promise.resolve();
      let release!: () => void;
      const mine = new Promise<void>((r) => {
        release = r;
      });
      const tail = prev.then(() => mine);
      tails.set(key, tail);
      const done = () => {
        release();
        if (tails.get(key) === tail) tails.delete(key);
      };
      let settled = false;
      const onAbort = () => {
        if (settled) return;
        settled = true;
        reject(signal.reason);
        void prev.then(done);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      void prev.then(() => {
        signal.removeEventListener("abort", onAbort);
        if (settled) return;
        settled = true;
        resolve(done);
      });
      if (signal.aborted) onAbort();
    });
  return {
    async acquire(keys: readonly string[], signal: AbortSignal): Promise<() => void> {
      const releases: (() => void)[] = [];
      const releaseAll = () => {
        for (const r of releases.reverse()) r();
      };
      try {
        for (const k of [...new Set(keys)].sort()) releases.push(await one(k, signal));
      } catch (e) {
        releaseAll();
        throw e;
      }
      return releaseAll;
    },
    held: (key: string) => tails.has(key),
  };
}

const cidLock = (cid: string) => `c:${cid}`;
const epLock = (key: string) => `e:${key}`;

const IPAM_ADDRESS_CODES = new Set(["already-allocated", "not-in-pool", "pool-disabled", "block-in-use"]);

/** Turns any failure of `step` into the API's error; an aborted signal's reason wins. */
function apiError(
  e: unknown,
  signal: AbortSignal | undefined,
  fallback: WorkloadErrorCode,
): WorkloadApiError {
  if (isWorkloadApiError(e)) return e;
  if (signal?.aborted && isWorkloadApiError(signal.reason)) return signal.reason;
  const err = e as { code?: unknown; message?: unknown; details?: unknown; retryable?: unknown };
  const message = typeof err?.message === "string" ? err.message : String(e);
  const details =
    typeof err?.details === "object" && err.details !== null ? (err.details as Record<string, unknown>) : {};
  if (isIpamError(e)) {
    const code = e.code as string;
    if (code === "pool-exhausted")
      return new WorkloadApiError(WorkloadErrorCode.PoolExhausted, message, { details, cause: e });
    if (code === "host-block-limit")
      return new WorkloadApiError(WorkloadErrorCode.HostBlockLimit, message, { details, cause: e });
    if (code === "no-pools")
      return new WorkloadApiError(WorkloadErrorCode.NoPools, message, { details, cause: e });
    if (IPAM_ADDRESS_CODES.has(code)) {
      return new WorkloadApiError(WorkloadErrorCode.AddressUnavailable, message, {
        details: { ...details, reason: code },
        cause: e,
      });
    }
    if (e.retryable) {
      return new WorkloadApiError(WorkloadErrorCode.DatastoreUnavailable, message, {
        details: { ...details, ipamCode: code },
        cause: e,
      });
    }
    return new WorkloadApiError(WorkloadErrorCode.IpamFailed, message, {
      details: { ...details, ipamCode: code },
      cause: e,
    });
  }
  if (isDatastoreError(e, "unavailable", "conflict", "closed", "aborted")) {
    return new WorkloadApiError(WorkloadErrorCode.DatastoreUnavailable, message, {
      details: { ...details, datastoreCode: e.code },
      cause: e,
    });
  }
  if (isDataplaneError(e)) {
    return new WorkloadApiError(WorkloadErrorCode.PlumbingFailed, message, {
      details: { ...details, reason: e.code },
      retryable: e.retryable,
      cause: e,
    });
  }
  return new WorkloadApiError(fallback, message, {
    details: typeof err?.code === "string" ? { ...details, cause: err.code } : details,
    cause: e,
  });
}

async function defaultNetnsExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return false;
    throw e;
  }
}

/** Creates the service. */
export function createWorkloadService(options: WorkloadServiceOptions): WorkloadService {
  const { nodeName, datastore, pipeline, ipam, plumber, logger } = options;
  const gracePeriodMs = options.gcGracePeriodMs ?? 60_000;
  const netnsExists = options.netnsExists ?? defaultNetnsExists;
  const now = options.now ?? Date.now;
  const { mtu: mtuOption } = options;
  const defaultMtu = typeof mtuOption === "function" ? mtuOption : () => mtuOption;
  const lock = createKeyedLock();
  let draining = false;
  let inFlight = 0;

  const cleanupSignal = () => AbortSignal.timeout(CLEANUP_MS);

  // This node's IPAM work, one call at a time (Calico's plugin takes a host-wide IPAM lock for the same
  // reason): concurrent adds all claim from the node's one affine block, and their compare-and-swap
  // conflicts made each add of a burst of 30 spend seconds re-reading and retrying (bench/cni-plugin.ts).
  let ipamTail: Promise<unknown> = Promise.resolve();
  const oneAtATime = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = ipamTail.then(fn, fn);
    ipamTail = run.catch(() => undefined);
    return run;
  };

  async function getEndpoint(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<WorkloadEndpoint | undefined> {
    try {
      return await datastore.get<WorkloadEndpoint>({ kind: KIND, namespace, name }, { signal });
    } catch (e) {
      if (isDatastoreError(e, "not-found")) return undefined;
      throw e;
    }
  }

  /** Pools this node may allocate from now, per family (IPAM's eligibility rules, read-only). */
  async function families(
    req: ValidAddRequest,
    signal: AbortSignal,
  ): Promise<{ num4: number; num6: number; pools: string[] | undefined }> {
    const list = await datastore.list<IpPoolResource & { metadata: { name: string } }>("IPPool", { signal });
    const pools = list.items.flatMap((p) => {
      try {
        return [normalizePool(p.metadata.name, p.spec, p.metadata.resourceVersion)];
      } catch {
        return []; // IPAM reports invalid pools itself when asked to allocate.
      }
    });
    let candidates = pools;
    if (req.pools.length > 0) {
      req.pools.forEach((want, i) => {
        if (!pools.some((p) => p.name === want || p.cidrText === want)) {
          throw new WorkloadApiError(WorkloadErrorCode.InvalidField, `invalid pools[${i}]: no such pool`, {
            details: { field: `pools[${i}]`, reason: "no such pool", pool: want },
          });
        }
      });
      candidates = pools.filter((p) => req.pools.includes(p.name) || req.pools.includes(p.cidrText));
    } else {
      candidates = pools.filter((p) => p.assignmentMode === "Automatic");
    }
    candidates = candidates.filter((p) => !p.disabled && p.allowedUses.includes("Workload"));
    if (candidates.some((p) => p.nodeSelector !== "all()")) {
      let labels: Record<string, string> = {};
      try {
        const node = await datastore.get<{
          kind: string;
          metadata: { name: string; labels?: Record<string, string> };
        }>({ kind: "Node", name: nodeName }, { signal });
        labels = node.metadata.labels ?? {};
      } catch (e) {
        if (!isDatastoreError(e, "not-found")) throw e;
      }
      candidates = candidates.filter((p) => {
        try {
          return defaultNodeSelectorMatches(p.nodeSelector, labels);
        } catch {
          return false;
        }
      });
    }
    const requested = new Set(req.ips.map((ip) => (isIPv6(ip) ? 6 : 4)));
    const has = (f: 4 | 6) => !requested.has(f) && candidates.some((p) => p.cidr.version === f);
    return {
      num4: has(4) ? 1 : 0,
      num6: has(6) ? 1 : 0,
      pools: req.pools.length > 0 ? [...req.pools] : undefined,
    };
  }

  async function allocate(
    req: ValidAddRequest,
    id: AttachmentIdentity,
    signal: AbortSignal,
  ): Promise<string[]> {
    const held = await ipam.ipsByHandle(id.handleId, { signal });
    if (held.length > 0) {
      // A repeated add gets what it holds; asking for other addresses meanwhile is a conflict the
      // runtime resolves with del first.
      if (req.ips.every((ip) => held.includes(ip))) return held;
      throw new WorkloadApiError(
        WorkloadErrorCode.AddressUnavailable,
        "attachment already holds other addresses than the ones requested",
        { details: { reason: "attachment-holds-others", held, requested: req.ips } },
      );
    }
    const attrs: AllocationAttributes = {
      node: nodeName,
      namespace: id.namespace,
      containerID: req.containerId,
      ifname: req.ifName,
      type: "workload",
    };
    if (id.orchestrator === "k8s") attrs.pod = id.workload;
    else attrs.workload = id.workload;
    for (const [k, v] of Object.entries(req.args)) attrs[`arg.${k}`] = v;
    const fam = await families(req, signal);
    if (req.ips.length === 0 && fam.num4 + fam.num6 === 0) {
      throw new WorkloadApiError(
        WorkloadErrorCode.NoPools,
        `no enabled pool selects node ${nodeName}${req.pools.length > 0 ? " among the pools asked for" : ""}`,
        { details: { node: nodeName, pools: req.pools } },
      );
    }
    // Only the claims take the node's IPAM turn: the reads above (this attachment's handle, which its
    // own locks already guard, and the pools) run beside other pods' claims instead of queueing with them.
    return oneAtATime(async () => {
      const out: string[] = [];
      for (const ip of req.ips) {
        const got = await ipam.assignIP(ip, { handleId: id.handleId, attrs, node: nodeName, signal });
        out.push(got.ip);
      }
      if (fam.num4 + fam.num6 > 0) {
        const r = await ipam.autoAssign({
          handleId: id.handleId,
          node: nodeName,
          num4: fam.num4,
          num6: fam.num6,
          pools: fam.pools,
          attrs,
          signal,
        });
        out.push(...r.ipv4.map((a) => a.ip), ...r.ipv6.map((a) => a.ip));
      }
      return out;
    });
  }

  /** Writes `want` over whatever is stored; returns the revision holding it. */
  async function writeEndpoint(
    want: WorkloadEndpoint,
    existing: WorkloadEndpoint | undefined,
    signal: AbortSignal,
  ): Promise<string> {
    let current = existing;
    for (let attempt = 0; attempt < 5; attempt++) {
      if (current !== undefined && sameEndpoint(current, want)) return current.metadata.resourceVersion!;
      try {
        const written =
          current === undefined
            ? await datastore.create(want, { signal })
            : await datastore.update(
                {
                  ...want,
                  metadata: { ...want.metadata, resourceVersion: current.metadata.resourceVersion! },
                },
                { signal },
              );
        return written.metadata.resourceVersion!;
      } catch (e) {
        if (!isDatastoreError(e, "already-exists", "conflict", "not-found")) throw e;
        current = await getEndpoint(want.metadata.namespace!, want.metadata.name, signal);
      }
    }
    throw new WorkloadApiError(WorkloadErrorCode.DatastoreUnavailable, "endpoint write kept conflicting", {
      details: { endpoint: `${want.metadata.namespace}/${want.metadata.name}` },
    });
  }

  /** Deletes the endpoint at `revision` (someone else's newer write stays); true if this call deleted it. */
  async function deleteEndpoint(
    namespace: string,
    name: string,
    revision: string | undefined,
    signal: AbortSignal,
  ): Promise<boolean> {
    try {
      await datastore.delete(
        { kind: KIND, namespace, name },
        revision === undefined ? { signal } : { resourceVersion: revision, signal },
      );
      return true;
    } catch (e) {
      if (isDatastoreError(e, "not-found", "conflict")) return false;
      throw e;
    }
  }

  const track = async <T>(fn: () => Promise<T>): Promise<T> => {
    inFlight++;
    try {
      return await fn();
    } finally {
      inFlight--;
    }
  };

  function notReady(): WorkloadApiError | undefined {
    if (draining) return new WorkloadApiError(WorkloadErrorCode.ShuttingDown, "the agent is stopping");
    if (!pipeline.inSync) {
      return new WorkloadApiError(
        WorkloadErrorCode.NotReady,
        "the agent's dataplane is not in sync yet: policy could not be programmed",
      );
    }
    return undefined;
  }

  async function add(asked: ValidAddRequest, signal: AbortSignal): Promise<WorkloadAddReply> {
    let req = asked;
    const refused = notReady();
    if (refused !== undefined) throw refused;
    const id = attachmentIdentity(nodeName, req);
    if (!(await netnsExists(req.netns))) {
      throw new WorkloadApiError(
        WorkloadErrorCode.NetnsNotFound,
        `network namespace ${req.netns} does not exist`,
        {
          details: { field: "netns", netns: req.netns },
        },
      );
    }
    const release = await lock.acquire([cidLock(req.containerId), epLock(id.key)], signal);
    const t0 = performance.now();
    let tStep = t0;
    const step = (s: AddStep) => {
      const t = performance.now();
      options.metrics?.addStep(s, (t - tStep) / 1000);
      tStep = t;
    };
    const log = logger.child({ containerId: req.containerId, ifName: req.ifName, endpoint: id.key });
    // What this call did, for the rollback.
    let owned = true;
    let allocated = false;
    let plumbed = false;
    let revision: string | undefined;
    let current = "ipam";
    let extra: WorkloadAddEnrichment["endpoint"] | undefined;
    try {
      signal.throwIfAborted();
      const enriched = await options.enrichAdd?.(req, signal);
      if (enriched !== undefined) ({ request: req, endpoint: extra } = enriched);
      const existing = await getEndpoint(id.namespace, id.name, signal);
      // An attachment that was added before: a failure now leaves what the earlier add made (the runtime
      // follows a failed add with del anyway), instead of tearing down a working pod.
      owned = !(
        existing?.spec.containerID === req.containerId &&
        existing.metadata.annotations?.[IFNAME_ANNOTATION] === req.ifName
      );
      // Addresses of the plugin's host-local delegate are its own: not allocated (nor rolled back) here.
      allocated = req.externalIps === undefined;
      const ips = req.externalIps === undefined ? await allocate(req, id, signal) : [...req.externalIps];
      step("ipam");
      current = "plumb";
      plumbed = true;
      const mtu = req.mtu ?? defaultMtu();
      const plumbedResult = await plumber.add(
        {
          endpoint: id.iface,
          containerNetns: pathNetns(req.netns),
          containerIfName: req.ifName,
          addresses: ips.map(hostNetwork),
          mtu,
          ...(req.mac === undefined ? {} : { mac: req.mac }),
        },
        { signal },
      );
      step("plumb");
      current = "endpoint-write";
      const want = buildWorkloadEndpoint(id, {
        node: nodeName,
        containerId: req.containerId,
        ifName: req.ifName,
        interfaceName: plumbedResult.hostIfName,
        ips,
        mac: plumbedResult.containerMac,
        labels: req.labels,
        mtu,
        ...extra,
      });
      revision = await writeEndpoint(want, existing, signal);
      step("endpoint-write");
      current = "programmed";
      await pipeline.waitForEndpoint(id.key, revision, { signal });
      step("programmed");
      options.metrics?.addStep("total", (performance.now() - t0) / 1000);
      log.info({ ips, hostInterface: plumbedResult.hostIfName, revision }, "workload added");
      return {
        interfaces: [
          { name: plumbedResult.hostIfName, mac: "ee:ee:ee:ee:ee:ee" },
          { name: plumbedResult.containerIfName, mac: plumbedResult.containerMac, sandbox: req.netns },
        ],
        ips: ips.map((ip) => ({
          address: hostNetwork(ip),
          gateway: isIPv6(ip) ? WORKLOAD_GATEWAY_V6 : WORKLOAD_GATEWAY_V4,
          interface: 1,
        })),
        routes: [
          ...(ips.some((ip) => !isIPv6(ip)) ? [{ dst: "0.0.0.0/0", gw: WORKLOAD_GATEWAY_V4 }] : []),
          ...(ips.some((ip) => isIPv6(ip)) ? [{ dst: "::/0", gw: WORKLOAD_GATEWAY_V6 }] : []),
        ],
        mac: plumbedResult.containerMac,
        hostInterface: plumbedResult.hostIfName,
        endpoint: { namespace: id.namespace, name: id.name, revision },
      };
    } catch (e) {
      const fallback =
        current === "plumb"
          ? WorkloadErrorCode.PlumbingFailed
          : current === "endpoint-write"
            ? WorkloadErrorCode.EndpointWriteFailed
            : current === "programmed"
              ? WorkloadErrorCode.NotReady
              : WorkloadErrorCode.IpamFailed;
      const err = apiError(e, signal, fallback);
      log.warn({ step: current, code: err.code, error: err.message, rollback: owned }, "workload add failed");
      if (owned) await rollback(id, { allocated, plumbed, revision }, log);
      throw err;
    } finally {
      release();
    }
  }

  async function rollback(
    id: AttachmentIdentity,
    did: { allocated: boolean; plumbed: boolean; revision: string | undefined },
    log: Logger,
  ): Promise<void> {
    const signal = cleanupSignal();
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        log.error({ what, error: (e as Error).message }, "workload add rollback step failed");
      }
    };
    if (did.revision !== undefined)
      await attempt("endpoint", () => deleteEndpoint(id.namespace, id.name, did.revision, signal));
    if (did.plumbed) await attempt("veth", () => plumber.remove(id.iface, { signal }));
    if (did.allocated) await attempt("ipam", () => ipam.releaseByHandle(id.handleId, { signal }));
  }

  /** Endpoints on this node written by the API for (containerId, ifName). */
  async function findByAttachment(
    containerId: string,
    ifName: string,
    signal: AbortSignal,
  ): Promise<WorkloadEndpoint[]> {
    const all = await datastore.list<WorkloadEndpoint>(KIND, { signal });
    return all.items.filter(
      (w) =>
        w.spec.node === nodeName &&
        w.spec.containerID === containerId &&
        w.metadata.annotations?.[IFNAME_ANNOTATION] === ifName,
    );
  }

  async function del(req: ValidDelRequest, signal: AbortSignal): Promise<WorkloadDelReply> {
    const id = attachmentIdentity(nodeName, req);
    const release = await lock.acquire([cidLock(req.containerId), epLock(id.key)], signal);
    const t0 = performance.now();
    let tStep = t0;
    const step = (s: DelStep) => {
      const t = performance.now();
      options.metrics?.delStep(s, (t - tStep) / 1000);
      tStep = t;
    };
    const log = logger.child({ containerId: req.containerId, ifName: req.ifName, endpoint: id.key });
    const failures: WorkloadApiError[] = [];
    const best = async <T>(what: string, fn: () => Promise<T>, fallback: T): Promise<T> => {
      try {
        return await fn();
      } catch (e) {
        const err = apiError(e, signal, WorkloadErrorCode.Internal);
        log.warn({ what, code: err.code, error: err.message }, "workload del step failed");
        failures.push(err);
        return fallback;
      }
    };
    try {
      let endpointDeleted = false;
      let interfaceRemoved = false;
      const byName = await best("get endpoint", () => getEndpoint(id.namespace, id.name, signal), undefined);
      const mine = (w: WorkloadEndpoint) =>
        w.spec.containerID === req.containerId &&
        (w.metadata.annotations?.[IFNAME_ANNOTATION] ?? req.ifName) === req.ifName;
      let targets: WorkloadEndpoint[] = [];
      let removeRequestVeth = false;
      if (byName !== undefined) {
        // Another sandbox of the same pod took the name (and the veth) since: leave both to it.
        if (mine(byName)) targets = [byName];
      } else if (failures.length === 0) {
        // The identity given at del may differ from the add's (no pod name): search by attachment.
        targets = await best(
          "find endpoint",
          () => findByAttachment(req.containerId, req.ifName, signal),
          [],
        );
        // No endpoint names this veth: whatever is left of a failed add goes.
        removeRequestVeth = targets.length === 0;
      }
      const veths: NonNullable<ReturnType<typeof ifaceOfEndpoint>>[] = [];
      for (const w of targets) {
        const ns = w.metadata.namespace!;
        if (
          await best(
            "delete endpoint",
            () => deleteEndpoint(ns, w.metadata.name, w.metadata.resourceVersion, signal),
            false,
          )
        )
          endpointDeleted = true;
        const iface = ifaceOfEndpoint(w);
        if (iface !== undefined) veths.push(iface);
      }
      if (removeRequestVeth) veths.push(id.iface);
      step("endpoint");
      for (const iface of veths)
        await best(
          "remove veth",
          async () => {
            await plumber.remove(iface, { signal });
            interfaceRemoved = true;
          },
          undefined,
        );
      step("veth");
      const released = await best(
        "release",
        () => oneAtATime(() => ipam.releaseByHandle(id.handleId, { signal })),
        [] as string[],
      );
      step("ipam");
      options.metrics?.delStep("total", (performance.now() - t0) / 1000);
      if (failures.length > 0) {
        // Report the most actionable failure; everything that could be done was done.
        throw failures.find((f) => f.retryable) ?? failures[0]!;
      }
      log.info({ released, endpointDeleted, interfaceRemoved }, "workload deleted");
      return { released, endpointDeleted, interfaceRemoved };
    } finally {
      release();
    }
  }

  async function check(req: ValidAddRequest, signal: AbortSignal): Promise<WorkloadCheckReply> {
    const id = attachmentIdentity(nodeName, req);
    const release = await lock.acquire([cidLock(req.containerId), epLock(id.key)], signal);
    try {
      const problems: string[] = [];
      const wep = await getEndpoint(id.namespace, id.name, signal);
      const held = req.externalIps ?? (await ipam.ipsByHandle(id.handleId, { signal }));
      if (held.length === 0) problems.push("no addresses allocated to this attachment");
      for (const ip of req.ips)
        if (!held.includes(ip)) problems.push(`requested address ${ip} not allocated`);
      if (wep === undefined) problems.push(`WorkloadEndpoint ${id.key} missing`);
      else {
        if (wep.spec.containerID !== req.containerId)
          problems.push(`WorkloadEndpoint ${id.key} belongs to container ${wep.spec.containerID}`);
        if (wep.spec.node !== nodeName)
          problems.push(`WorkloadEndpoint ${id.key} is on node ${wep.spec.node}`);
        const want = held.map(hostNetwork).sort();
        const have = [...(wep.spec.ipNetworks ?? [])].sort();
        if (JSON.stringify(want) !== JSON.stringify(have))
          problems.push(
            `WorkloadEndpoint addresses ${have.join(",")} differ from the allocation ${want.join(",")}`,
          );
        if (wep.spec.interfaceName !== plumber.hostIfName(id.iface))
          problems.push(
            `WorkloadEndpoint interface ${wep.spec.interfaceName} is not ${plumber.hostIfName(id.iface)}`,
          );
      }
      if (!(await netnsExists(req.netns))) problems.push(`network namespace ${req.netns} missing`);
      else if (held.length > 0) {
        try {
          problems.push(
            ...(await plumber.check(
              {
                endpoint: id.iface,
                containerNetns: pathNetns(req.netns),
                containerIfName: req.ifName,
                addresses: held.map(hostNetwork),
                // The pod's own MTU: the agent's follows the pools, a pod made before a change keeps its.
                mtu: req.mtu ?? recordedMtu(wep) ?? defaultMtu(),
                ...(req.mac === undefined ? {} : { mac: req.mac }),
              },
              { signal },
            )),
          );
        } catch (e) {
          throw apiError(e, signal, WorkloadErrorCode.PlumbingFailed);
        }
      }
      if (problems.length > 0) {
        throw new WorkloadApiError(WorkloadErrorCode.CheckFailed, problems[0]!, { details: { problems } });
      }
      return { ok: true, ips: held, hostInterface: plumber.hostIfName(id.iface) };
    } catch (e) {
      throw apiError(e, signal, WorkloadErrorCode.Internal);
    } finally {
      release();
    }
  }

  async function gc(req: WorkloadGcRequest, signal: AbortSignal): Promise<WorkloadGcReply> {
    const live = new Set(req.validAttachments.map((a) => workloadHandleId(a.containerId, a.ifName)));
    const log = logger.child({ op: "gc" });
    try {
      const result = await ipam.gc(live, gracePeriodMs, {
        scope: { node: nodeName, handlePrefix: WORKLOAD_HANDLE_PREFIX },
        signal,
      });
      const endpointsDeleted: string[] = [];
      const all = await datastore.list<WorkloadEndpoint>(KIND, { signal });
      for (const w of all.items) {
        const ifName = w.metadata.annotations?.[IFNAME_ANNOTATION];
        const cid = w.spec.containerID;
        // Only endpoints of this node that this API wrote (kube-adapter's and other nodes' are not ours).
        if (w.spec.node !== nodeName || ifName === undefined || cid === undefined) continue;
        if (live.has(workloadHandleId(cid, ifName))) continue;
        const created = Date.parse(w.metadata.creationTimestamp ?? "");
        if (!Number.isFinite(created) || now() - created < gracePeriodMs) continue;
        const key = `${w.metadata.namespace}/${w.metadata.name}`;
        if (lock.held(cidLock(cid)) || lock.held(epLock(key))) continue; // an add or del is at work
        const release = await lock.acquire([cidLock(cid), epLock(key)], signal);
        try {
          if (
            await deleteEndpoint(w.metadata.namespace!, w.metadata.name, w.metadata.resourceVersion, signal)
          ) {
            endpointsDeleted.push(key);
            const iface = ifaceOfEndpoint(w);
            if (iface !== undefined) await plumber.remove(iface, { signal });
            // The endpoint's addresses go with it, even inside IPAM's own grace (the endpoint is older).
            await ipam.releaseByHandle(workloadHandleId(cid, ifName), { signal });
          }
        } finally {
          release();
        }
      }
      log.info(
        {
          released: result.released.length,
          deferred: result.deferred.length,
          endpointsDeleted: endpointsDeleted.length,
        },
        "workload gc done",
      );
      return { released: result.released, deferred: result.deferred, endpointsDeleted };
    } catch (e) {
      throw apiError(e, signal, WorkloadErrorCode.Internal);
    }
  }

  return {
    add: (req, signal) => track(() => add(req, signal)),
    del: (req, signal) => track(() => del(req, signal)),
    check: (req, signal) => track(() => check(req, signal)),
    gc: (req, signal) => track(() => gc(req, signal)),
    status() {
      const refused = notReady();
      return {
        apiVersion: "v1",
        node: nodeName,
        ready: refused === undefined,
        ...(refused === undefined ? {} : { reason: refused.message }),
        mtu: defaultMtu(),
        inFlight,
        gcGracePeriodMs: gracePeriodMs,
      };
    },
    drain() {
      draining = true;
    },
    get inFlight() {
      return inFlight;
    },
  };
}
