/**
 * The workload API server: HTTP + JSON on a root-only unix socket (directory 0700, socket 0600), one
 * deadline per request, bodies capped, every failure a typed JSON error. The work itself is
 * `service.ts`.
 *
 * @packageDocumentation
 */
import { lstat, mkdir, unlink, chmod } from "node:fs/promises";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { connect } from "node:net";
import { dirname } from "node:path";
import { tryParseCidr } from "@margay/api";
import type { WorkloadPlumber } from "@margay/dataplane";
import { isDatastoreError } from "@margay/datastore";
import type { Ipam } from "@margay/ipam";
import type { AgentContext, DataplanePipeline, NodeAddresses } from "../context.js";
import { WorkloadApiError, WorkloadErrorCode, isWorkloadApiError } from "./errors.js";
import { createWorkloadMetrics } from "./metrics.js";
import {
  DEFAULT_DEADLINES_MS,
  MAX_GC_REQUEST_BYTES,
  MAX_REQUEST_BYTES,
  NODE_POD_CIDRS_ANNOTATION,
  TIMEOUT_HEADER,
  WORKLOAD_API_PATHS,
  type WorkloadVerb,
} from "./protocol.js";
import { type WorkloadServiceOptions, createWorkloadService } from "./service.js";
import { readDelSpool, rejectSpooled, removeSpooled } from "./spool.js";
import { parseAddRequest, parseDelRequest, parseGcRequest } from "./validate.js";

/** Health component name of the workload API. */
export const WORKLOAD_API_HEALTH = "workload-api";

/** Options of {@link startWorkloadApi}. */
export interface WorkloadApiOptions {
  /** Waited on so an add replies only once the endpoint is programmed; refuses adds until in sync. */
  readonly pipeline: Pick<DataplanePipeline, "inSync" | "waitForEndpoint">;
  /** The agent's IPAM client (the API does not close it). */
  readonly ipam: Ipam;
  /** Plumber whose host namespace is the node's and whose prefix is the first workload prefix. */
  readonly plumber: WorkloadPlumber;
  /** The node's addresses (shown in status). */
  readonly addresses: NodeAddresses;
  /** Veth MTU (the agent's derived MTU); a getter is read at each add (the MTU follows the pools). */
  readonly mtu: number | (() => number);
  /** Default: `ctx.config.workloadSocket`. */
  readonly socketPath?: string | undefined;
  /** gc grace period, ms. Default: `ctx.config.workloadGcGracePeriodMs` (`MARGAY_WORKLOAD_GC_GRACE_PERIOD`), else 60 000. */
  readonly gcGracePeriodMs?: number | undefined;
  /** Kubernetes mode: the add hook (see `WorkloadServiceOptions.enrichAdd`). */
  readonly enrichAdd?: WorkloadServiceOptions["enrichAdd"];
  /**
   * Kubernetes mode: this node's pod CIDRs from its Kubernetes Node's `spec.podCIDRs` (node/kubernetes
   * `createNodePodCidrsSource`). A non-empty answer wins over the Node annotation in status; `undefined`
   * (unknown) falls back to it. Must not throw.
   */
  readonly nodePodCidrs?: ((signal: AbortSignal) => Promise<readonly string[] | undefined>) | undefined;
  /** Per-verb deadlines, ms, over {@link DEFAULT_DEADLINES_MS}. */
  readonly deadlinesMs?: Partial<Record<WorkloadVerb, number>> | undefined;
  /** Whether a netns path exists (tests). Default: `stat`. */
  readonly netnsExists?: ((path: string) => Promise<boolean>) | undefined;
  /** Where the CNI DEL spool lives (`<stateDir>/del-spool`). Default: `ctx.config.stateDir`. */
  readonly stateDir?: string | undefined;
  /** How often spooled dels that failed are retried, ms. Default 30 000. */
  readonly spoolRetryMs?: number | undefined;
}

/** A running workload API. */
export interface WorkloadApi {
  /** The socket it listens on. */
  readonly socketPath: string;
  /** Refuses new adds, lets requests in flight finish (bounded), closes the socket and removes it. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const ROUTES: Readonly<Record<string, { readonly verb: WorkloadVerb; readonly method: string }>> =
  Object.freeze(
    Object.fromEntries(
      (Object.entries(WORKLOAD_API_PATHS) as [WorkloadVerb, string][]).map(([verb, path]) => [
        path,
        { verb, method: verb === "status" ? "GET" : "POST" },
      ]),
    ),
  );

/** How long close() lets requests in flight finish before cutting their connections. */
const CLOSE_GRACE_MS = 10_000;

/** True when something accepts connections on the unix socket `path`. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
    s.setTimeout(2_000, () => done(true)); // a live but stuck agent still owns the path
  });
}

async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return;
    throw e;
  }
  if (!st.isSocket()) {
    throw new WorkloadApiError(WorkloadErrorCode.SocketUnavailable, `${path} exists and is not a socket`, {
      details: { path, reason: "not-a-socket" },
    });
  }
  if (await answers(path)) {
    throw new WorkloadApiError(
      WorkloadErrorCode.SocketUnavailable,
      `another agent is serving the workload API on ${path}`,
      { details: { path, reason: "in-use" } },
    );
  }
  // A socket left by an agent that died: nobody answers on it.
  await unlink(path);
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    // Created 0600 from the start (bind honours the umask), not chmod-ed after a window.
    let old: number | undefined;
    try {
      old = process.umask(0o177);
    } catch {
      // Worker threads cannot set the umask; the chmod below still applies.
    }
    try {
      server.listen(path, () => {
        server.off("error", reject);
        resolve();
      });
    } finally {
      if (old !== undefined) process.umask(old);
    }
  });
}

// JSON with bigint (IPAM pool sizes) as decimal strings.
const toJson = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? x.toString() : x));

function send(res: ServerResponse, status: number, body: unknown, last = false): void {
  if (res.headersSent || res.destroyed) return;
  const text = toJson(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    // While closing, no connection is kept for another request.
    ...(last ? { connection: "close" } : {}),
  });
  res.end(text);
}

function readBody(req: IncomingMessage, limit: number, signal: AbortSignal): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > limit) {
    return Promise.reject(
      new WorkloadApiError(WorkloadErrorCode.BodyTooLarge, `request body larger than ${limit} bytes`, {
        details: { limit, length: declared },
      }),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(
          new WorkloadApiError(WorkloadErrorCode.BodyTooLarge, `request body larger than ${limit} bytes`, {
            details: { limit },
          }),
        );
        return;
      }
      chunks.push(c);
    });
    req.once("error", reject);
    req.once("end", () => {
      signal.removeEventListener("abort", onAbort);
      const text = Buffer.concat(chunks).toString("utf8");
      try {
        resolve(JSON.parse(text));
      } catch (e) {
        reject(
          new WorkloadApiError(WorkloadErrorCode.InvalidJson, "request body is not valid JSON", {
            details: { reason: (e as Error).message },
          }),
        );
      }
    });
  });
}

function deadlineOf(req: IncomingMessage, verb: WorkloadVerb, own: number): number {
  const raw = req.headers[TIMEOUT_HEADER];
  if (raw === undefined) return own;
  const n = Number(raw);
  if (typeof raw !== "string" || !/^[0-9]{1,9}$/.test(raw) || n <= 0) {
    throw new WorkloadApiError(WorkloadErrorCode.InvalidField, `invalid ${TIMEOUT_HEADER} header`, {
      details: { field: `header:${TIMEOUT_HEADER}`, reason: "must be a positive integer of ms", verb },
    });
  }
  return Math.min(n, own);
}

/**
 * Starts the workload API on `options.socketPath` (default `ctx.config.workloadSocket`): creates its
 * directory (0700), removes a stale socket nobody answers on (refuses, `socket-unavailable`, when a live
 * agent does or the path is not a socket), listens with mode 0600, and reports health component
 * `workload-api`. Closes on `close()` or when `ctx.signal` aborts.
 */
export async function startWorkloadApi(ctx: AgentContext, options: WorkloadApiOptions): Promise<WorkloadApi> {
  const socketPath = options.socketPath ?? ctx.config.workloadSocket;
  const logger = ctx.logger.child({ component: "workload-api" });
  const metrics = createWorkloadMetrics(ctx.metrics);
  const deadlines = { ...DEFAULT_DEADLINES_MS, ...options.deadlinesMs };
  let closing: Promise<void> | undefined;
  const service = createWorkloadService({
    nodeName: ctx.config.nodeName,
    datastore: ctx.datastore,
    pipeline: options.pipeline,
    ipam: options.ipam,
    plumber: options.plumber,
    mtu: options.mtu,
    logger,
    metrics,
    gcGracePeriodMs: options.gcGracePeriodMs ?? ctx.config.workloadGcGracePeriodMs,
    netnsExists: options.netnsExists,
    enrichAdd: options.enrichAdd,
  });

  /**
   * This node's pod CIDRs: the Kubernetes Node's in Kubernetes mode when it has them, else the Node's
   * annotation (none when the Node or the annotation is missing).
   */
  async function podCidrs(signal: AbortSignal): Promise<string[]> {
    const fromKube = await options.nodePodCidrs?.(signal);
    if (fromKube !== undefined && fromKube.length > 0) return [...fromKube];
    try {
      const node = await ctx.datastore.get<{
        kind: string;
        metadata: { name: string; annotations?: Record<string, string> };
      }>({ kind: "Node", name: ctx.config.nodeName }, { signal });
      const raw = node.metadata.annotations?.[NODE_POD_CIDRS_ANNOTATION] ?? "";
      return raw.split(",").flatMap((c) => {
        const cidr = tryParseCidr(c.trim());
        return cidr === undefined ? [] : [cidr.text];
      });
    } catch (e) {
      if (isDatastoreError(e, "not-found")) return [];
      throw e;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "").split("?", 1)[0]!;
    const route = ROUTES[path];
    let verb = route?.verb ?? "unknown";
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const onStop = () =>
      abort.abort(new WorkloadApiError(WorkloadErrorCode.ShuttingDown, "the agent is stopping"));
    const onGone = () => {
      if (!res.writableFinished)
        abort.abort(
          new WorkloadApiError(WorkloadErrorCode.DeadlineExceeded, "the client closed the connection"),
        );
    };
    try {
      if (route === undefined) {
        throw new WorkloadApiError(WorkloadErrorCode.UnknownEndpoint, `no such endpoint: ${path}`, {
          details: { path, paths: Object.values(WORKLOAD_API_PATHS) },
        });
      }
      verb = route.verb;
      if (req.method !== route.method) {
        throw new WorkloadApiError(WorkloadErrorCode.MethodNotAllowed, `${path} takes ${route.method}`, {
          details: { path, method: req.method, allowed: route.method },
        });
      }
      const ms = deadlineOf(req, route.verb, deadlines[route.verb]);
      timer = setTimeout(
        () =>
          abort.abort(
            new WorkloadApiError(
              WorkloadErrorCode.DeadlineExceeded,
              `${route.verb} did not finish within ${ms} ms`,
              {
                details: { deadlineMs: ms },
              },
            ),
          ),
        ms,
      );
      ctx.signal.addEventListener("abort", onStop, { once: true });
      res.once("close", onGone);
      if (route.verb === "status") {
        send(res, 200, {
          ...service.status(),
          addresses: { ipv4: options.addresses.ipv4, ipv6: options.addresses.ipv6 },
          podCidrs: await podCidrs(abort.signal),
        });
        metrics.request(verb, "ok");
        return;
      }
      const type = (req.headers["content-type"] ?? "").split(";", 1)[0]!.trim().toLowerCase();
      if (type !== "application/json") {
        throw new WorkloadApiError(
          WorkloadErrorCode.UnsupportedMediaType,
          "content-type must be application/json",
          {
            details: { contentType: req.headers["content-type"] ?? null },
          },
        );
      }
      const body = await readBody(
        req,
        route.verb === "gc" ? MAX_GC_REQUEST_BYTES : MAX_REQUEST_BYTES,
        abort.signal,
      );
      let reply: unknown;
      switch (route.verb) {
        case "add":
          reply = await service.add(parseAddRequest(body), abort.signal);
          break;
        case "del":
          reply = await service.del(parseDelRequest(body), abort.signal);
          break;
        case "check":
          reply = await service.check(parseAddRequest(body), abort.signal);
          break;
        case "gc":
          reply = await service.gc(parseGcRequest(body), abort.signal);
          break;
      }
      send(res, 200, reply, closing !== undefined);
      metrics.request(verb, "ok");
    } catch (e) {
      const err = isWorkloadApiError(e)
        ? e
        : abort.signal.aborted && isWorkloadApiError(abort.signal.reason)
          ? abort.signal.reason
          : new WorkloadApiError(WorkloadErrorCode.Internal, e instanceof Error ? e.message : String(e), {
              cause: e,
            });
      if (err.code === WorkloadErrorCode.Internal)
        logger.error({ verb, error: err.message, stack: (e as Error)?.stack }, "workload API internal error");
      metrics.request(verb, err.code);
      // A refused body is not read: close the connection instead of draining it.
      if (err.code === WorkloadErrorCode.BodyTooLarge) res.setHeader("connection", "close");
      send(res, err.status, err.toBody(), closing !== undefined);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onStop);
      res.off("close", onGone);
    }
  }

  await prepareSocketPath(socketPath);
  const server = createServer({ requestTimeout: 0, headersTimeout: 10_000 }, (req, res) => {
    void handle(req, res);
  });
  await listen(server, socketPath);
  await chmod(socketPath, 0o600);
  const ino = (await lstat(socketPath)).ino;
  ctx.health.report(WORKLOAD_API_HEALTH, { live: true, ready: true });
  logger.info({ socket: socketPath }, "workload API listening");

  // Dels the plugin spooled while the agent was down: finished now, failures retried until they pass.
  const stateDir = options.stateDir ?? ctx.config.stateDir;
  let spoolTimer: NodeJS.Timeout | undefined;
  let spoolRun: Promise<void> | undefined;
  const drainSpool = async (): Promise<void> => {
    let left = 0;
    for (const entry of await readDelSpool(stateDir)) {
      if (closing !== undefined) return;
      let req: ReturnType<typeof parseDelRequest>;
      try {
        if (entry.error !== undefined) throw new Error(entry.error);
        req = parseDelRequest(entry.body);
      } catch (e) {
        logger.error({ file: entry.file, error: (e as Error).message }, "spooled del rejected");
        await rejectSpooled(entry.file);
        continue;
      }
      try {
        await service.del(req, AbortSignal.timeout(deadlines.del));
        await removeSpooled(entry.file);
        logger.info({ containerId: req.containerId, ifName: req.ifName }, "spooled del done");
      } catch (e) {
        left++;
        logger.warn({ file: entry.file, error: (e as Error).message }, "spooled del failed; retried later");
      }
    }
    if (left > 0 && closing === undefined) {
      spoolTimer = setTimeout(() => {
        spoolRun = drainSpool().catch((e: unknown) =>
          logger.error({ error: (e as Error).message }, "del spool unreadable"),
        );
      }, options.spoolRetryMs ?? 30_000);
      spoolTimer.unref();
    }
  };
  if (stateDir !== undefined) {
    spoolRun = drainSpool().catch((e: unknown) =>
      logger.error({ error: (e as Error).message }, "del spool unreadable"),
    );
  }

  const close = () => {
    closing ??= (async () => {
      service.drain();
      if (spoolTimer !== undefined) clearTimeout(spoolTimer);
      await spoolRun;
      ctx.health.report(WORKLOAD_API_HEALTH, { live: true, ready: false, reason: "workload API closed" });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const cut = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
      await closed;
      clearTimeout(cut);
      try {
        // Only our own socket: a successor may already listen on the path.
        if ((await lstat(socketPath)).ino === ino) await unlink(socketPath);
      } catch {
        // already gone
      }
      logger.info({ socket: socketPath }, "workload API closed");
    })();
    return closing;
  };
  ctx.signal.addEventListener("abort", () => void close(), { once: true });
  return { socketPath, close, [Symbol.asyncDispose]: close };
}
