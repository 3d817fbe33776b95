/**
 * A faithful fake of the Kubernetes API server's list and watch, over real HTTP(S), for tests and
 * benchmarks: one store-wide resourceVersion (as etcd's revision), paginated lists from a consistent
 * snapshot with continue tokens, watches that replay history after a resourceVersion and stream chunked
 * JSON events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR 410), `timeoutSeconds`, bearer-token and
 * client-certificate authentication, and chaos on command: drop every watch, compact history, fail the
 * next requests.
 *
 * @packageDocumentation
 */

import { randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import type { KubeObject, KubeStatus } from "../kube-types.js";
import { objectKey } from "../kube-types.js";
import { type KubeResourceName, KubeResources, type KubeResourceType } from "../resources.js";

/** Options of {@link startFakeKubeApiServer}. */
export interface FakeKubeApiServerOptions {
  /** Address to bind. Default `127.0.0.1` (port chosen free by the OS). */
  host?: string | undefined;
  /** Serve HTTPS with this key and certificate. Default: plain HTTP. */
  tls?:
    | {
        key: string | Buffer;
        cert: string | Buffer;
        /** CA that client certificates must chain to (enables `requireClientCert`). */
        ca?: string | Buffer | undefined;
      }
    | undefined;
  /** Require `Authorization: Bearer <token>`. Default: no token needed. */
  token?: string | undefined;
  /** Require a client certificate signed by `tls.ca` (and accept it instead of a token). Default false. */
  requireClientCert?: boolean | undefined;
  /** Interval of BOOKMARK events on watches that allow them, ms. Default 1000. */
  bookmarkIntervalMs?: number | undefined;
  /** Events of history kept; older ones are compacted away automatically. Default 200 000. */
  historyLimit?: number | undefined;
}

/** Counters of the fake server. */
export interface FakeKubeApiServerStats {
  /** Every request. */
  requests: number;
  /** List requests (pages). */
  lists: number;
  /** Watch requests. */
  watches: number;
  /** Answers (or watch ERROR events) with status 410. */
  gone: number;
  /** Watch connections cut by {@link FakeKubeApiServer.dropWatches}. */
  dropped: number;
  /** Requests failed on purpose by {@link FakeKubeApiServer.failRequests}. */
  injectedFailures: number;
}

/** The running fake. Mutations are synchronous and bump the store's resourceVersion by one each. */
export interface FakeKubeApiServer {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** The current store resourceVersion. */
  readonly resourceVersion: string;
  /** The oldest resourceVersion a watch may still start from. */
  readonly compactedResourceVersion: string;
  /** Watches currently streaming. */
  readonly openWatches: number;
  /** Counters. */
  readonly stats: Readonly<FakeKubeApiServerStats>;
  /** Creates an object (uid, resourceVersion and creationTimestamp are assigned). Throws if it exists. */
  create<T extends KubeObject>(resource: KubeResourceName, object: T): T;
  /** Replaces an existing object (throws if absent). */
  update<T extends KubeObject>(resource: KubeResourceName, object: T): T;
  /** Deletes an object; returns its last state, or `undefined` if it did not exist. */
  delete(resource: KubeResourceName, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Reads one object. */
  get(resource: KubeResourceName, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Every object of a resource type (current state). */
  list(resource: KubeResourceName): KubeObject[];
  /** Discards all history: watches and continue tokens older than now get 410 Gone. */
  compact(): void;
  /** Cuts every open watch connection mid-stream (no clean end); returns how many. */
  dropWatches(): number;
  /** Fails the next `count` requests with `status` (default 500). */
  failRequests(count: number, status?: number): void;
  /** Stops the server and cuts every connection. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface LogEntry {
  rv: number;
  resource: string;
  namespace: string | undefined;
  type: "ADDED" | "MODIFIED" | "DELETED";
  object: KubeObject;
  line?: string;
}

interface Watcher {
  resource: KubeResourceType;
  namespace: string | undefined;
  res: http.ServerResponse;
  timers: NodeJS.Timeout[];
}

interface Snapshot {
  rv: number;
  items: KubeObject[];
}

const SNAPSHOT_LIMIT = 64;

function status(code: number, reason: string, message: string): KubeStatus {
  return { kind: "Status", apiVersion: "v1", status: "Failure", message, reason, code };
}

/** Splits `/api/v1/...` or `/apis/group/version/...` into resource type and namespace. */
function route(pathname: string): { type: KubeResourceType; namespace: string | undefined } | undefined {
  const parts = pathname.split("/").filter((p) => p !== "");
  let apiVersion: string;
  let rest: string[];
  if (parts[0] === "api" && parts.length >= 3) {
    apiVersion = parts[1]!;
    rest = parts.slice(2);
  } else if (parts[0] === "apis" && parts.length >= 4) {
    apiVersion = `${parts[1]}/${parts[2]}`;
    rest = parts.slice(3);
  } else {
    return undefined;
  }
  let namespace: string | undefined;
  if (rest.length === 3 && rest[0] === "namespaces") {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length !== 1) return undefined;
  const type = (KubeResources as Record<string, KubeResourceType>)[rest[0]!];
  if (type === undefined || type.apiVersion !== apiVersion) return undefined;
  if (namespace !== undefined && !type.namespaced) return undefined;
  return { type, namespace };
}

/** Starts the fake API server on a free port. */
export async function startFakeKubeApiServer(
  options: FakeKubeApiServerOptions = {},
): Promise<FakeKubeApiServer> {
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
  const historyLimit = options.historyLimit ?? 200_000;
  const stores = new Map<string, Map<string, KubeObject>>();
  for (const name of Object.keys(KubeResources)) stores.set(name, new Map());
  let rv = 1;
  // Watches from a resourceVersion below this get 410; events after it are all in `log`.
  let compactRv = 1;
  let log: LogEntry[] = [];
  const watchers = new Set<Watcher>();
  const snapshots = new Map<number, Snapshot>();
  let snapshotId = 0;
  let failCount = 0;
  let failStatus = 500;
  const stats: FakeKubeApiServerStats = {
    requests: 0,
    lists: 0,
    watches: 0,
    gone: 0,
    dropped: 0,
    injectedFailures: 0,
  };

  const storeOf = (resource: string): Map<string, KubeObject> => {
    const s = stores.get(resource);
    if (s === undefined) throw new RangeError(`unknown resource ${resource}`);
    return s;
  };

  const eventLine = (e: LogEntry): string => {
    if (e.line === undefined) {
      const t = (KubeResources as Record<string, KubeResourceType>)[e.resource]!;
      e.line = `${JSON.stringify({ type: e.type, object: { kind: t.kind, apiVersion: t.apiVersion, ...e.object } })}\n`;
    }
    return e.line;
  };

  const trimHistory = () => {
    if (log.length <= historyLimit) return;
    const drop = log.length - historyLimit;
    compactRv = log[drop - 1]!.rv;
    log = log.slice(drop);
    for (const [id, snap] of snapshots) if (snap.rv < compactRv) snapshots.delete(id);
  };

  const record = (resource: string, type: LogEntry["type"], object: KubeObject) => {
    const entry: LogEntry = { rv, resource, namespace: object.metadata.namespace, type, object };
    log.push(entry);
    for (const w of watchers) {
      if (w.resource.plural !== resource) continue;
      if (w.namespace !== undefined && w.namespace !== entry.namespace) continue;
      w.res.write(eventLine(entry));
    }
    trimHistory();
  };

  const normalise = (resource: string, object: KubeObject): { key: string; obj: KubeObject } => {
    const type = (KubeResources as Record<string, KubeResourceType>)[resource]!;
    const obj = structuredClone(object);
    delete obj.kind;
    delete obj.apiVersion;
    if (!type.namespaced) delete obj.metadata.namespace;
    else obj.metadata.namespace ??= "default";
    return { key: objectKey(obj), obj };
  };

  const api = {
    create<T extends KubeObject>(resource: KubeResourceName, object: T): T {
      const store = storeOf(resource);
      const { key, obj } = normalise(resource, object);
      if (store.has(key)) throw new Error(`${resource} ${key} already exists`);
      rv++;
      obj.metadata.uid = randomUUID();
      obj.metadata.resourceVersion = String(rv);
      obj.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
      store.set(key, obj);
      record(resource, "ADDED", obj);
      return structuredClone(obj) as T;
    },
    update<T extends KubeObject>(resource: KubeResourceName, object: T): T {
      const store = storeOf(resource);
      const { key, obj } = normalise(resource, object);
      const old = store.get(key);
      if (old === undefined) throw new Error(`${resource} ${key} not found`);
      rv++;
      obj.metadata.uid = old.metadata.uid;
      obj.metadata.creationTimestamp = old.metadata.creationTimestamp;
      obj.metadata.resourceVersion = String(rv);
      store.set(key, obj);
      record(resource, "MODIFIED", obj);
      return structuredClone(obj) as T;
    },
    delete(resource: KubeResourceName, namespace: string | undefined, name: string) {
      const store = storeOf(resource);
      const key = namespace === undefined ? name : `${namespace}/${name}`;
      const old = store.get(key);
      if (old === undefined) return undefined;
      rv++;
      store.delete(key);
      // As the API server does, the DELETED event carries the last state at the deleting revision.
      const last = { ...old, metadata: { ...old.metadata, resourceVersion: String(rv) } };
      record(resource, "DELETED", last);
      return structuredClone(last);
    },
    get(resource: KubeResourceName, namespace: string | undefined, name: string) {
      const o = storeOf(resource).get(namespace === undefined ? name : `${namespace}/${name}`);
      return o === undefined ? undefined : structuredClone(o);
    },
    list(resource: KubeResourceName) {
      return [...storeOf(resource).values()].map((o) => structuredClone(o));
    },
  };

  const send = (res: http.ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };

  const gone = (res: http.ServerResponse, message: string) => {
    stats.gone++;
    send(res, 410, status(410, "Expired", message));
  };

  const handleList = (
    res: http.ServerResponse,
    type: KubeResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
  ) => {
    stats.lists++;
    const limit = Number(q.get("limit") ?? "0");
    const cont = q.get("continue");
    let snap: Snapshot;
    let offset = 0;
    if (cont !== null && cont !== "") {
      let token: { rv: number; id: number; offset: number };
      try {
        token = JSON.parse(Buffer.from(cont, "base64url").toString("utf8"));
      } catch {
        return send(res, 400, status(400, "BadRequest", "invalid continue token"));
      }
      const s = snapshots.get(token.id);
      if (token.rv < compactRv || s === undefined) {
        return gone(
          res,
          "The provided continue parameter is too old to display a consistent list result. " +
            "You can start a new list without the continue parameter.",
        );
      }
      snap = s;
      offset = token.offset;
    } else {
      const items = [...storeOf(type.plural).values()].filter(
        (o) => namespace === undefined || o.metadata.namespace === namespace,
      );
      items.sort((a, b) => {
        const ka = objectKey(a);
        const kb = objectKey(b);
        return ka < kb ? -1 : ka > kb ? 1 : 0;
      });
      snap = { rv, items };
    }
    const end = limit > 0 ? Math.min(snap.items.length, offset + limit) : snap.items.length;
    const metadata: Record<string, unknown> = { resourceVersion: String(snap.rv) };
    if (end < snap.items.length) {
      let id = [...snapshots].find(([, s]) => s === snap)?.[0];
      if (id === undefined) {
        id = ++snapshotId;
        snapshots.set(id, snap);
        if (snapshots.size > SNAPSHOT_LIMIT) snapshots.delete(snapshots.keys().next().value!);
      }
      metadata.continue = Buffer.from(JSON.stringify({ rv: snap.rv, id, offset: end })).toString("base64url");
      metadata.remainingItemCount = snap.items.length - end;
    } else {
      for (const [id, s] of snapshots) if (s === snap) snapshots.delete(id);
    }
    const body = `{"kind":"${type.kind}List","apiVersion":"${type.apiVersion}","metadata":${JSON.stringify(
      metadata,
    )},"items":${JSON.stringify(snap.items.slice(offset, end))}}`;
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  };

  const handleWatch = (
    res: http.ServerResponse,
    type: KubeResourceType,
    namespace: string | undefined,
    q: URLSearchParams,
  ) => {
    stats.watches++;
    const from = q.get("resourceVersion") ?? "";
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    // As the API server does: headers go out at once, so clients see the watch open before any event.
    res.flushHeaders();
    const match = (e: { resource: string; namespace: string | undefined }) =>
      e.resource === type.plural && (namespace === undefined || e.namespace === namespace);
    if (from === "" || from === "0") {
      // "Start at any": the current state as synthetic ADDED events, then live changes.
      for (const o of storeOf(type.plural).values()) {
        if (namespace !== undefined && o.metadata.namespace !== namespace) continue;
        res.write(
          `${JSON.stringify({ type: "ADDED", object: { kind: type.kind, apiVersion: type.apiVersion, ...o } })}\n`,
        );
      }
    } else {
      const start = Number(from);
      if (!Number.isSafeInteger(start) || start < compactRv) {
        stats.gone++;
        const s = status(410, "Expired", `too old resource version: ${from} (${compactRv})`);
        res.end(`${JSON.stringify({ type: "ERROR", object: s })}\n`);
        return;
      }
      // History is ordered by rv: find the first event after `start` by binary search.
      let lo = 0;
      let hi = log.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (log[mid]!.rv <= start) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo; i < log.length; i++) if (match(log[i]!)) res.write(eventLine(log[i]!));
    }
    const watcher: Watcher = { resource: type, namespace, res, timers: [] };
    watchers.add(watcher);
    const stop = () => {
      for (const t of watcher.timers) clearTimeout(t);
      watchers.delete(watcher);
    };
    res.on("close", stop);
    const timeoutSeconds = Number(q.get("timeoutSeconds") ?? "0");
    if (timeoutSeconds > 0) {
      watcher.timers.push(
        setTimeout(() => {
          stop();
          res.end();
        }, timeoutSeconds * 1000),
      );
    }
    if (q.get("allowWatchBookmarks") === "true") {
      const bookmark = () => {
        res.write(
          `${JSON.stringify({
            type: "BOOKMARK",
            object: {
              kind: type.kind,
              apiVersion: type.apiVersion,
              metadata: { resourceVersion: String(rv) },
            },
          })}\n`,
        );
      };
      watcher.timers.push(setInterval(bookmark, bookmarkIntervalMs));
    }
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    stats.requests++;
    if (failCount > 0) {
      failCount--;
      stats.injectedFailures++;
      return send(res, failStatus, status(failStatus, "InternalError", "injected failure"));
    }
    const authedByCert = options.requireClientCert === true && (req.socket as TLSSocket).authorized === true;
    if (options.token !== undefined && !authedByCert) {
      if (req.headers.authorization !== `Bearer ${options.token}`) {
        return send(res, 401, status(401, "Unauthorized", "Unauthorized"));
      }
    } else if (options.requireClientCert === true && !authedByCert) {
      return send(res, 401, status(401, "Unauthorized", "Unauthorized"));
    }
    if (req.method !== "GET") {
      return send(res, 405, status(405, "MethodNotAllowed", "only GET is implemented"));
    }
    const url = new URL(req.url ?? "/", "http://fake");
    const r = route(url.pathname);
    if (r === undefined) return send(res, 404, status(404, "NotFound", `no route ${url.pathname}`));
    const q = url.searchParams;
    if (q.get("watch") === "1" || q.get("watch") === "true") handleWatch(res, r.type, r.namespace, q);
    else handleList(res, r.type, r.namespace, q);
  };

  const server =
    options.tls === undefined
      ? http.createServer(handler)
      : https.createServer(
          {
            key: options.tls.key,
            cert: options.tls.cert,
            ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca }),
            requestCert: options.requireClientCert === true,
            rejectUnauthorized: false,
          },
          handler,
        );
  server.keepAliveTimeout = 5000;
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `${options.tls === undefined ? "http" : "https"}://${host.includes(":") ? `[${host}]` : host}:${port}`;

  const close = async () => {
    for (const w of watchers) {
      for (const t of w.timers) clearTimeout(t);
      w.res.destroy();
    }
    watchers.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    url,
    get resourceVersion() {
      return String(rv);
    },
    get compactedResourceVersion() {
      return String(compactRv);
    },
    get openWatches() {
      return watchers.size;
    },
    stats,
    ...api,
    compact() {
      compactRv = rv;
      log = [];
      snapshots.clear();
    },
    dropWatches() {
      const n = watchers.size;
      for (const w of [...watchers]) {
        for (const t of w.timers) clearTimeout(t);
        watchers.delete(w);
        w.res.socket?.destroy();
      }
      stats.dropped += n;
      return n;
    },
    failRequests(count: number, code = 500) {
      failCount = count;
      failStatus = code;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
