/**
 * A faithful fake of the Kubernetes API server, over real HTTP(S), for tests and benchmarks. It keeps
 * kube-apiserver's semantics for every verb a controller uses:
 *
 * - one store-wide resourceVersion (as etcd's revision); paginated lists from a consistent snapshot with
 *   continue tokens; label and field selectors on list and watch (a watched object that stops matching
 *   arrives as DELETED, one that starts matching as ADDED, as the watch cache does);
 * - watches that replay history after a resourceVersion and stream chunked JSON events (ADDED, MODIFIED,
 *   DELETED, BOOKMARK, ERROR 410), `timeoutSeconds`;
 * - create (POST; 409 AlreadyExists, `generateName`), get, update (PUT; a stale `metadata.resourceVersion`
 *   gets 409 Conflict, a no-op write changes nothing; Leases and custom resources refuse a PUT without
 *   resourceVersion with 422, a PUT of a missing Lease or Service creates it, as their strategies), patch (merge, JSON and simple strategic merge; a
 *   resourceVersion in the patch is a precondition; custom resources answer 415 to strategic merge),
 *   delete (DeleteOptions preconditions on uid / resourceVersion); `metadata.generation` counts changes
 *   outside `metadata` and `status` on the types whose strategy keeps one (pods, network policies,
 *   endpoint slices, custom resources); failures are `Status` objects shaped as the API server's (reason,
 *   code, details with name/group/kind, 422 causes per field);
 * - bearer-token (rotatable with {@link FakeKubeApiServer.setTokens}) and client-certificate
 *   authentication;
 * - chaos on command: drop every watch, compact history (410 Gone), fail the next requests.
 *
 * Not modelled: admission (a namespace need not exist), graceful deletion and finalizers
 * (`deletionTimestamp`), subresources (`/status`), server-side apply, list-merge keys of strategic merge.
 *
 * @packageDocumentation
 */

import { randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { httpError, type KubeAdapterError } from "../errors.js";
import type { KubeObject, KubeStatus } from "../kube-types.js";
import { objectKey } from "../kube-types.js";
import { type KubeResourceName, KubeResources, type KubeResourceType } from "../resources.js";
import { applyJsonPatch, applyMergePatch, applyStrategicMergePatch, deepEqual, PatchError } from "./patch.js";
import { type ObjectPredicate, parseFieldSelector, parseLabelSelector, SelectorError } from "./selectors.js";

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
  /** Accept any of these bearer tokens (with `token`, the union). Default: no token needed. */
  tokens?: readonly string[] | undefined;
  /** Require a client certificate signed by `tls.ca` (and accept it instead of a token). Default false. */
  requireClientCert?: boolean | undefined;
  /** Interval of BOOKMARK events on watches that allow them, ms. Default 1000. */
  bookmarkIntervalMs?: number | undefined;
  /** Events of history kept; older ones are compacted away automatically. Default 200 000. */
  historyLimit?: number | undefined;
  /**
   * Give every written object a `metadata.managedFields` entry, as the API server does for each writer.
   * Default false (so tests comparing objects stay short); informers drop the field by default.
   */
  managedFields?: boolean | undefined;
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
  /** Successful writes over HTTP (POST, PUT, PATCH, DELETE). */
  writes: number;
  /** 409 answers (AlreadyExists and Conflict). */
  conflicts: number;
}

/** A request as {@link FakeKubeApiServer.failRequests} filters see it. */
export interface FakeKubeRequestInfo {
  method: string;
  /** Path without the query. */
  path: string;
}

/**
 * The running fake. The methods below are the test's own hand on the store: synchronous, unconditional
 * (no resourceVersion check) and each bumps the store's resourceVersion by one, as a write through the
 * API would. Over HTTP every verb keeps the API server's semantics.
 */
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
  /**
   * Creates an object (uid, resourceVersion, generation and creationTimestamp are assigned).
   *
   * @throws {@link KubeAdapterError} `conflict` if it exists, `invalid` if the API server would refuse it.
   */
  create<T extends KubeObject>(resource: KubeResourceName, object: T): T;
  /**
   * Replaces an existing object whatever its resourceVersion.
   *
   * @throws {@link KubeAdapterError} `not-found` if absent, `invalid` if the API server would refuse it.
   */
  update<T extends KubeObject>(resource: KubeResourceName, object: T): T;
  /** Deletes an object; returns its last state, or `undefined` if it did not exist. */
  delete(resource: KubeResourceName, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Reads one object. */
  get(resource: KubeResourceName, namespace: string | undefined, name: string): KubeObject | undefined;
  /** Every object of a resource type (current state). */
  list(resource: KubeResourceName): KubeObject[];
  /**
   * Sets the accepted bearer tokens (a rotation: the old ones stop working at once); `undefined` turns
   * token authentication off. Client certificates keep working when `requireClientCert` is set.
   */
  setTokens(tokens: readonly string[] | undefined): void;
  /** Discards all history: watches and continue tokens older than now get 410 Gone. */
  compact(): void;
  /** Cuts every open watch connection mid-stream (no clean end); returns how many. */
  dropWatches(): number;
  /**
   * Fails the next `count` requests (those `match` accepts, when given) with `status` (default 500) and
   * an `InternalError` Status (or the reason that goes with `status`).
   */
  failRequests(count: number, status?: number, match?: (request: FakeKubeRequestInfo) => boolean): void;
  /** Stops the server and cuts every connection. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

type EventType = "ADDED" | "MODIFIED" | "DELETED";

interface LogEntry {
  rv: number;
  resource: string;
  namespace: string | undefined;
  type: EventType;
  object: KubeObject;
  /** The state before a MODIFIED (for selector-filtered watches). */
  previous?: KubeObject | undefined;
  line?: string;
}

interface Watcher {
  resource: KubeResourceType;
  namespace: string | undefined;
  /** Label/field selector; `undefined` when none was given. */
  filter: ObjectPredicate | undefined;
  res: http.ServerResponse;
  timers: NodeJS.Timeout[];
}

interface Snapshot {
  rv: number;
  items: KubeObject[];
}

/** What an HTTP handler answers when a write fails. */
class StatusError extends Error {
  constructor(readonly status: KubeStatus) {
    super(status.message);
  }
}

const SNAPSHOT_LIMIT = 64;

/**
 * Types whose DELETE answers the deleted object (the generic registry's `ReturnDeletedObject: true`, set in
 * the pod and service-account storage of kubernetes/kubernetes `pkg/registry/core/{pod,serviceaccount}/storage`); the others
 * answer a `Status` of `Success`.
 */
const RETURNS_DELETED_OBJECT: ReadonlySet<string> = new Set([
  "pods",
  "serviceaccounts",
  "services",
  "namespaces",
  "adminnetworkpolicies",
  "baselineadminnetworkpolicies",
]);

/**
 * Types whose PUT of a missing object creates it (201), as their registry strategies'
 * `AllowCreateOnUpdate() == true` (`pkg/registry/coordination/lease/strategy.go`,
 * `pkg/registry/core/service/strategy.go`); the others answer 404.
 */
const CREATE_ON_UPDATE: ReadonlySet<string> = new Set(["leases", "services"]);

/**
 * Types whose PUT must carry `metadata.resourceVersion` (`AllowUnconditionalUpdate() == false`: Leases and
 * custom resources); without one the API server answers 422 "must be specified for an update". The others
 * take a PUT without resourceVersion as an unconditional update.
 */
const CONDITIONAL_UPDATE_ONLY: ReadonlySet<string> = new Set([
  "leases",
  "adminnetworkpolicies",
  "baselineadminnetworkpolicies",
]);

/**
 * Types whose strategy maintains `metadata.generation` (1 at create, +1 on a change outside metadata and
 * status): Pods, NetworkPolicies, EndpointSlices and custom resources. The others (Leases, Namespaces,
 * Services, Nodes, ServiceAccounts) have none, as a real Lease read back shows.
 */
const HAS_GENERATION: ReadonlySet<string> = new Set([
  "pods",
  "networkpolicies",
  "endpointslices",
  "adminnetworkpolicies",
  "baselineadminnetworkpolicies",
]);

/** Custom resources (no strategic merge patch, different field-selector wording). */
const CUSTOM_RESOURCES: ReadonlySet<string> = new Set([
  "adminnetworkpolicies",
  "baselineadminnetworkpolicies",
]);

const REASONS: Readonly<Record<number, string>> = {
  400: "BadRequest",
  401: "Unauthorized",
  403: "Forbidden",
  404: "NotFound",
  405: "MethodNotAllowed",
  409: "Conflict",
  410: "Expired",
  415: "UnsupportedMediaType",
  422: "Invalid",
  429: "TooManyRequests",
  500: "InternalError",
  503: "ServiceUnavailable",
  504: "Timeout",
};

function failure(code: number, reason: string, message: string, details?: KubeStatus["details"]): KubeStatus {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    ...(details === undefined ? {} : { details }),
    code,
  };
}

const groupOf = (type: KubeResourceType): string =>
  type.apiVersion.includes("/") ? type.apiVersion.slice(0, type.apiVersion.indexOf("/")) : "";

/** `pods`, `leases.coordination.k8s.io`: how the API server names a resource in messages. */
const qualified = (type: KubeResourceType): string => {
  const g = groupOf(type);
  return g === "" ? type.plural : `${type.plural}.${g}`;
};

function detailsOf(type: KubeResourceType, name: string, uid?: string): NonNullable<KubeStatus["details"]> {
  const g = groupOf(type);
  return {
    name,
    ...(g === "" ? {} : { group: g }),
    kind: type.plural,
    ...(uid === undefined ? {} : { uid }),
  };
}

function notFound(type: KubeResourceType, name: string): StatusError {
  return new StatusError(
    failure(404, "NotFound", `${qualified(type)} "${name}" not found`, detailsOf(type, name)),
  );
}

function alreadyExists(type: KubeResourceType, name: string): StatusError {
  return new StatusError(
    failure(409, "AlreadyExists", `${qualified(type)} "${name}" already exists`, detailsOf(type, name)),
  );
}

function conflict(type: KubeResourceType, name: string, why: string): StatusError {
  return new StatusError(
    failure(
      409,
      "Conflict",
      `Operation cannot be fulfilled on ${qualified(type)} "${name}": ${why}`,
      detailsOf(type, name),
    ),
  );
}

const STALE = "the object has been modified; please apply your changes to the latest version and try again";

function badRequest(message: string): StatusError {
  return new StatusError(failure(400, "BadRequest", message));
}

interface Cause {
  reason: string;
  message: string;
  field: string;
}

function invalid(type: KubeResourceType, name: string, causes: Cause[]): StatusError {
  const errs = causes.map((c) => `${c.field}: ${c.message}`);
  const g = groupOf(type);
  return new StatusError(
    failure(
      422,
      "Invalid",
      `${type.kind}${g === "" ? "" : `.${g}`} "${name}" is invalid: ${errs.length === 1 ? errs[0] : `[${errs.join(", ")}]`}`,
      // As Go's omitempty: no `name` when it is empty, no `group` for the core group.
      { ...(name === "" ? {} : { name }), ...(g === "" ? {} : { group: g }), kind: type.kind, causes },
    ),
  );
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The API server's validation, for the fields this fake knows. */
function validate(type: KubeResourceType, obj: KubeObject): Cause[] {
  const causes: Cause[] = [];
  const name = obj.metadata.name;
  if (typeof name !== "string" || name === "") {
    causes.push({
      reason: "FieldValueRequired",
      message: "Required value: name or generateName is required",
      field: "metadata.name",
    });
  } else {
    // Namespaces and Services need DNS-1123 labels; most other types DNS-1123 subdomains.
    const label = type.plural === "namespaces" || type.plural === "services";
    const ok = label
      ? DNS1123_LABEL.test(name) && name.length <= 63
      : DNS1123_SUBDOMAIN.test(name) && name.length <= 253;
    if (!ok) {
      causes.push({
        reason: "FieldValueInvalid",
        message: label
          ? `Invalid value: "${name}": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`
          : `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`,
        field: "metadata.name",
      });
    }
  }
  const o = obj as KubeObject & {
    spec?: Record<string, unknown>;
    addressType?: unknown;
    endpoints?: unknown;
  };
  if (type.plural === "leases") {
    const d = o.spec?.leaseDurationSeconds;
    if (d !== undefined && d !== null && !(typeof d === "number" && d > 0)) {
      causes.push({
        reason: "FieldValueInvalid",
        message: `Invalid value: ${JSON.stringify(d)}: must be greater than 0`,
        field: "spec.leaseDurationSeconds",
      });
    }
    const t = o.spec?.leaseTransitions;
    if (t !== undefined && t !== null && !(typeof t === "number" && t >= 0)) {
      causes.push({
        reason: "FieldValueInvalid",
        message: `Invalid value: ${JSON.stringify(t)}: must be greater than or equal to 0`,
        field: "spec.leaseTransitions",
      });
    }
  }
  if (type.plural === "endpointslices") {
    if (!["IPv4", "IPv6", "FQDN"].includes(o.addressType as string)) {
      causes.push(
        o.addressType === undefined
          ? { reason: "FieldValueRequired", message: "Required value", field: "addressType" }
          : {
              reason: "FieldValueNotSupported",
              message: `Unsupported value: ${JSON.stringify(o.addressType)}: supported values: "FQDN", "IPv4", "IPv6"`,
              field: "addressType",
            },
      );
    }
  }
  return causes;
}

/** Everything but `metadata` and `status`: what `metadata.generation` counts changes of. */
function desiredState(o: KubeObject): unknown {
  const {
    metadata: _m,
    status: _s,
    kind: _k,
    apiVersion: _a,
    ...rest
  } = o as KubeObject & { status?: unknown };
  return rest;
}

/** Splits `/api/v1/...` or `/apis/group/version/...` into resource type, namespace and object name. */
function route(
  pathname: string,
): { type: KubeResourceType; namespace: string | undefined; name: string | undefined } | undefined {
  const parts = pathname
    .split("/")
    .filter((p) => p !== "")
    .map((p) => decodeURIComponent(p));
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
  // `/namespaces/x` is the Namespace x; `/namespaces/x/pods...` is inside it.
  if (rest.length >= 3 && rest[0] === "namespaces") {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  if (rest.length !== 1 && rest.length !== 2) return undefined;
  const type = (KubeResources as Record<string, KubeResourceType>)[rest[0]!];
  if (type === undefined || type.apiVersion !== apiVersion) return undefined;
  if (namespace !== undefined && !type.namespaced) return undefined;
  return { type, namespace, name: rest[1] };
}

const PATCH_TYPES: Readonly<Record<string, "merge" | "json" | "strategic">> = {
  "application/merge-patch+json": "merge",
  "application/json-patch+json": "json",
  "application/strategic-merge-patch+json": "strategic",
};

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
  let failMatch: ((r: FakeKubeRequestInfo) => boolean) | undefined;
  let tokens: Set<string> | undefined =
    options.token === undefined && options.tokens === undefined
      ? undefined
      : new Set([...(options.token === undefined ? [] : [options.token]), ...(options.tokens ?? [])]);
  const stats: FakeKubeApiServerStats = {
    requests: 0,
    lists: 0,
    watches: 0,
    gone: 0,
    dropped: 0,
    injectedFailures: 0,
    writes: 0,
    conflicts: 0,
  };

  const typeOf = (resource: string): KubeResourceType => {
    const t = (KubeResources as Record<string, KubeResourceType>)[resource];
    if (t === undefined) throw new RangeError(`unknown resource ${resource}`);
    return t;
  };
  const storeOf = (resource: string): Map<string, KubeObject> => {
    const s = stores.get(resource);
    if (s === undefined) throw new RangeError(`unknown resource ${resource}`);
    return s;
  };
  const keyOf = (type: KubeResourceType, namespace: string | undefined, name: string) =>
    type.namespaced ? `${namespace ?? "default"}/${name}` : name;
  const withType = (type: KubeResourceType, o: KubeObject): KubeObject => ({
    kind: type.kind,
    apiVersion: type.apiVersion,
    ...o,
  });

  const eventLine = (e: LogEntry): string => {
    e.line ??= `${JSON.stringify({ type: e.type, object: withType(typeOf(e.resource), e.object) })}\n`;
    return e.line;
  };

  /** The event a watch with `filter` sees for `e` (the watch cache's rules), or none. */
  const filteredLine = (e: LogEntry, filter: ObjectPredicate | undefined): string | undefined => {
    if (filter === undefined) return eventLine(e);
    const now = filter(e.object);
    if (e.type !== "MODIFIED") return now ? eventLine(e) : undefined;
    const before = e.previous !== undefined && filter(e.previous);
    if (now)
      return before
        ? eventLine(e)
        : `${JSON.stringify({ type: "ADDED", object: withType(typeOf(e.resource), e.object) })}\n`;
    if (!before) return undefined;
    // It stopped matching: a DELETED carrying the previous state at this event's resourceVersion.
    const last = { ...e.previous!, metadata: { ...e.previous!.metadata, resourceVersion: String(e.rv) } };
    return `${JSON.stringify({ type: "DELETED", object: withType(typeOf(e.resource), last) })}\n`;
  };

  const trimHistory = () => {
    if (log.length <= historyLimit) return;
    const drop = log.length - historyLimit;
    compactRv = log[drop - 1]!.rv;
    log = log.slice(drop);
    for (const [id, snap] of snapshots) if (snap.rv < compactRv) snapshots.delete(id);
  };

  const record = (resource: string, type: EventType, object: KubeObject, previous?: KubeObject) => {
    const entry: LogEntry = { rv, resource, namespace: object.metadata.namespace, type, object, previous };
    log.push(entry);
    for (const w of watchers) {
      if (w.resource.plural !== resource) continue;
      if (w.namespace !== undefined && w.namespace !== entry.namespace) continue;
      const line = filteredLine(entry, w.filter);
      if (line !== undefined) w.res.write(line);
    }
    trimHistory();
  };

  /** A copy without type meta, namespace defaulted (or dropped for cluster-scoped types). */
  const normalise = (type: KubeResourceType, object: KubeObject): KubeObject => {
    const obj = structuredClone(object);
    delete obj.kind;
    delete obj.apiVersion;
    obj.metadata ??= {} as KubeObject["metadata"];
    if (!type.namespaced) delete obj.metadata.namespace;
    else if (obj.metadata.namespace === undefined || obj.metadata.namespace === "")
      obj.metadata.namespace = "default";
    return obj;
  };

  const stamp = (o: KubeObject, operation: "Update" | "Apply", manager: string) => {
    if (options.managedFields !== true) return;
    o.metadata.managedFields = [
      {
        manager,
        operation,
        apiVersion: "v1",
        time: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        fieldsType: "FieldsV1",
        fieldsV1: { "f:metadata": { "f:labels": {} }, "f:spec": {} },
      },
    ];
  };

  // --- the store's verbs; they throw StatusError, as the API server would answer ---

  const doCreate = (type: KubeResourceType, object: KubeObject, manager = "fake"): KubeObject => {
    const obj = normalise(type, object);
    if (
      (obj.metadata.name === undefined || obj.metadata.name === "") &&
      typeof (obj.metadata as { generateName?: unknown }).generateName === "string"
    ) {
      const base = (obj.metadata as { generateName: string }).generateName;
      const suffix = randomBytes(5)
        .toString("hex")
        .replace(/[^a-z0-9]/g, "")
        .slice(0, 5);
      obj.metadata.name = `${base}${suffix}`;
    }
    const causes = validate(type, obj);
    if (causes.length > 0) throw invalid(type, obj.metadata.name ?? "", causes);
    const store = storeOf(type.plural);
    const key = objectKey(obj);
    if (store.has(key)) throw alreadyExists(type, obj.metadata.name);
    rv++;
    obj.metadata.uid = randomUUID();
    obj.metadata.resourceVersion = String(rv);
    if (HAS_GENERATION.has(type.plural)) obj.metadata.generation = 1;
    else delete obj.metadata.generation;
    obj.metadata.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    stamp(obj, "Update", manager);
    store.set(key, obj);
    record(type.plural, "ADDED", obj);
    return obj;
  };

  const doUpdate = (
    type: KubeResourceType,
    object: KubeObject,
    checkVersion: boolean,
    manager = "fake",
  ): KubeObject => {
    const obj = normalise(type, object);
    const store = storeOf(type.plural);
    const name = obj.metadata.name;
    const old = typeof name === "string" && name !== "" ? store.get(objectKey(obj)) : undefined;
    if (old === undefined) {
      if (typeof name !== "string" || name === "") throw invalid(type, "", validate(type, obj));
      throw notFound(type, name);
    }
    if (checkVersion) {
      const want = obj.metadata.resourceVersion;
      if ((want === undefined || want === "") && CONDITIONAL_UPDATE_ONLY.has(type.plural)) {
        // The registry store's message: the resource (not the kind) names the object, and the unset
        // version is printed as Go's %#v of uint64 0.
        const g = groupOf(type);
        throw new StatusError(
          failure(
            422,
            "Invalid",
            `${qualified(type)} "${name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`,
            {
              name,
              ...(g === "" ? {} : { group: g }),
              kind: type.plural,
              causes: [
                {
                  reason: "FieldValueInvalid",
                  message: "Invalid value: 0x0: must be specified for an update",
                  field: "metadata.resourceVersion",
                },
              ],
            },
          ),
        );
      }
      if (want !== undefined && want !== "" && want !== old.metadata.resourceVersion)
        throw conflict(type, name, STALE);
      const uid = obj.metadata.uid;
      if (uid !== undefined && uid !== "" && uid !== old.metadata.uid) {
        throw conflict(
          type,
          name,
          `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${old.metadata.uid}`,
        );
      }
    }
    const causes = validate(type, obj);
    if (causes.length > 0) throw invalid(type, name, causes);
    obj.metadata.uid = old.metadata.uid;
    obj.metadata.creationTimestamp = old.metadata.creationTimestamp;
    obj.metadata.resourceVersion = old.metadata.resourceVersion;
    if (HAS_GENERATION.has(type.plural)) obj.metadata.generation = old.metadata.generation ?? 1;
    else delete obj.metadata.generation;
    if (options.managedFields === true) obj.metadata.managedFields = old.metadata.managedFields;
    // As etcd3's GuaranteedUpdate: an update that changes nothing writes nothing and sends no event.
    if (deepEqual(JSON.parse(JSON.stringify(obj)), JSON.parse(JSON.stringify(old)))) return old;
    if (HAS_GENERATION.has(type.plural) && !deepEqual(desiredState(obj), desiredState(old)))
      obj.metadata.generation = (old.metadata.generation ?? 1) + 1;
    rv++;
    obj.metadata.resourceVersion = String(rv);
    stamp(obj, "Update", manager);
    store.set(objectKey(obj), obj);
    record(type.plural, "MODIFIED", obj, old);
    return obj;
  };

  const doDelete = (
    type: KubeResourceType,
    namespace: string | undefined,
    name: string,
    preconditions?: { uid?: unknown; resourceVersion?: unknown },
  ): KubeObject => {
    const store = storeOf(type.plural);
    const key = keyOf(type, namespace, name);
    const old = store.get(key);
    if (old === undefined) throw notFound(type, name);
    const pu = preconditions?.uid;
    if (typeof pu === "string" && pu !== old.metadata.uid) {
      throw conflict(
        type,
        name,
        `Precondition failed: UID in precondition: ${pu}, UID in object meta: ${old.metadata.uid}`,
      );
    }
    const pr = preconditions?.resourceVersion;
    if (typeof pr === "string" && pr !== old.metadata.resourceVersion) {
      throw conflict(
        type,
        name,
        `Precondition failed: ResourceVersion in precondition: ${pr}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
      );
    }
    rv++;
    store.delete(key);
    // As the API server does, the DELETED event carries the last state at the deleting revision.
    const last = { ...old, metadata: { ...old.metadata, resourceVersion: String(rv) } };
    record(type.plural, "DELETED", last);
    return last;
  };

  const toAdapterError = (e: unknown): unknown => {
    if (!(e instanceof StatusError)) return e;
    const s = e.status;
    return httpError(s.code ?? 500, s.message ?? "failed", {
      reason: s.reason,
      kind: s.details?.kind,
      object: s.details?.name,
      ...(s.details?.causes === undefined ? {} : { causes: s.details.causes }),
    });
  };
  const js = <R>(f: () => R): R => {
    try {
      return f();
    } catch (e) {
      throw toAdapterError(e) as KubeAdapterError;
    }
  };

  const api = {
    create<T extends KubeObject>(resource: KubeResourceName, object: T): T {
      return js(() => structuredClone(doCreate(typeOf(resource), object)) as T);
    },
    update<T extends KubeObject>(resource: KubeResourceName, object: T): T {
      return js(() => structuredClone(doUpdate(typeOf(resource), object, false)) as T);
    },
    delete(resource: KubeResourceName, namespace: string | undefined, name: string) {
      const type = typeOf(resource);
      if (!storeOf(resource).has(keyOf(type, namespace, name))) return undefined;
      return structuredClone(doDelete(type, namespace, name));
    },
    get(resource: KubeResourceName, namespace: string | undefined, name: string) {
      const type = typeOf(resource);
      const o = storeOf(resource).get(keyOf(type, namespace, name));
      return o === undefined ? undefined : structuredClone(o);
    },
    list(resource: KubeResourceName) {
      return [...storeOf(resource).values()].map((o) => structuredClone(o));
    },
  };

  // --- HTTP ---

  const send = (res: http.ServerResponse, code: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  };
  const sendStatus = (res: http.ServerResponse, s: KubeStatus) => {
    if (s.code === 409) stats.conflicts++;
    if (s.code === 410) stats.gone++;
    send(res, s.code ?? 500, s);
  };

  const selectorOf = (type: KubeResourceType, q: URLSearchParams): ObjectPredicate | undefined => {
    const ls = q.get("labelSelector") ?? "";
    const fs = q.get("fieldSelector") ?? "";
    if (ls === "" && fs === "") return undefined;
    try {
      const l = parseLabelSelector(ls);
      const f = parseFieldSelector(type.plural, fs, !CUSTOM_RESOURCES.has(type.plural));
      return (o) => l(o) && f(o);
    } catch (e) {
      if (e instanceof SelectorError) throw badRequest(e.message);
      throw e;
    }
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
        throw badRequest("invalid continue token");
      }
      const s = snapshots.get(token.id);
      if (token.rv < compactRv || s === undefined) {
        throw new StatusError(
          failure(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. " +
              "You can start a new list without the continue parameter.",
          ),
        );
      }
      snap = s;
      offset = token.offset;
    } else {
      const filter = selectorOf(type, q);
      const items = [...storeOf(type.plural).values()].filter(
        (o) =>
          (namespace === undefined || o.metadata.namespace === namespace) &&
          (filter === undefined || filter(o)),
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
    const filter = selectorOf(type, q);
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
        if (filter !== undefined && !filter(o)) continue;
        res.write(`${JSON.stringify({ type: "ADDED", object: withType(type, o) })}\n`);
      }
    } else {
      const start = Number(from);
      if (!Number.isSafeInteger(start) || start < compactRv) {
        stats.gone++;
        const s = failure(410, "Expired", `too old resource version: ${from} (${compactRv})`);
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
      for (let i = lo; i < log.length; i++) {
        const e = log[i]!;
        if (!match(e)) continue;
        const line = filteredLine(e, filter);
        if (line !== undefined) res.write(line);
      }
    }
    const watcher: Watcher = { resource: type, namespace, filter, res, timers: [] };
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

  const readJson = async (req: http.IncomingMessage): Promise<unknown> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim() === "") return undefined;
    try {
      return JSON.parse(text);
    } catch (e) {
      throw badRequest(`error decoding request body: ${(e as Error).message}`);
    }
  };

  /** Checks a written body: an object of this type, in the URL's namespace (and with its name). */
  const bodyObject = (
    type: KubeResourceType,
    namespace: string | undefined,
    name: string | undefined,
    body: unknown,
  ): KubeObject => {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      throw badRequest(`the body of the request was not a ${type.kind} object`);
    }
    const o = body as KubeObject;
    if (o.kind !== undefined && o.kind !== type.kind) {
      throw badRequest(
        `the kind of the provided object (${o.kind}) does not match the resource (${type.kind})`,
      );
    }
    if (o.apiVersion !== undefined && o.apiVersion !== type.apiVersion) {
      throw badRequest(
        `the API version in the data (${o.apiVersion}) does not match the expected API version (${type.apiVersion})`,
      );
    }
    if (typeof o.metadata !== "object" || o.metadata === null) (o as { metadata: unknown }).metadata = {};
    const ns = o.metadata.namespace;
    if (type.namespaced) {
      if (ns !== undefined && ns !== "" && ns !== namespace) {
        throw badRequest(
          "the namespace of the provided object does not match the namespace sent on the request",
        );
      }
      o.metadata.namespace = namespace;
    }
    if (name !== undefined && o.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${o.metadata.name}) does not match the name on the URL (${name})`,
      );
    }
    return o;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => {
    const method = req.method ?? "GET";
    const r = route(url.pathname);
    if (r === undefined) {
      throw new StatusError(failure(404, "NotFound", "the server could not find the requested resource", {}));
    }
    const { type, namespace, name } = r;
    const q = url.searchParams;
    const notAllowed = () =>
      new StatusError(
        failure(
          405,
          "MethodNotAllowed",
          "the server does not allow this method on the requested resource",
          {},
        ),
      );
    if (name === undefined) {
      if (method === "GET") {
        if (q.get("watch") === "1" || q.get("watch") === "true") return handleWatch(res, type, namespace, q);
        return handleList(res, type, namespace, q);
      }
      if (method === "POST") {
        if (type.namespaced && namespace === undefined) throw notAllowed();
        const obj = bodyObject(type, namespace, undefined, await readJson(req));
        const created = doCreate(type, obj, req.headers["user-agent"] ?? "unknown");
        stats.writes++;
        return send(res, 201, withType(type, created));
      }
      throw notAllowed();
    }
    if (type.namespaced && namespace === undefined) throw notFound(type, name);
    const key = keyOf(type, namespace, name);
    switch (method) {
      case "GET": {
        const o = storeOf(type.plural).get(key);
        if (o === undefined) throw notFound(type, name);
        return send(res, 200, withType(type, o));
      }
      case "PUT": {
        const obj = bodyObject(type, namespace, name, await readJson(req));
        if (CREATE_ON_UPDATE.has(type.plural) && !storeOf(type.plural).has(key)) {
          // Create on update: the store ignores the body's resourceVersion and uid (a new object).
          delete obj.metadata.resourceVersion;
          delete obj.metadata.uid;
          const created = doCreate(type, obj, req.headers["user-agent"] ?? "unknown");
          stats.writes++;
          return send(res, 201, withType(type, created));
        }
        const updated = doUpdate(type, obj, true, req.headers["user-agent"] ?? "unknown");
        stats.writes++;
        return send(res, 200, withType(type, updated));
      }
      case "PATCH": {
        const contentType = (req.headers["content-type"] ?? "").split(";")[0]!.trim();
        const flavour = PATCH_TYPES[contentType];
        if (flavour === undefined || (flavour === "strategic" && CUSTOM_RESOURCES.has(type.plural))) {
          throw new StatusError(
            failure(
              415,
              "UnsupportedMediaType",
              `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json${CUSTOM_RESOURCES.has(type.plural) ? "" : ", application/strategic-merge-patch+json"}, application/apply-patch+yaml`,
            ),
          );
        }
        const patch = await readJson(req);
        const current = storeOf(type.plural).get(key);
        if (current === undefined) throw notFound(type, name);
        const doc = withType(type, structuredClone(current));
        let patched: unknown;
        try {
          if (flavour === "json") patched = applyJsonPatch(doc, patch);
          else if (flavour === "merge") patched = applyMergePatch(doc, patch);
          else patched = applyStrategicMergePatch(doc, patch);
        } catch (e) {
          if (!(e instanceof PatchError)) throw e;
          throw new StatusError(failure(e.status, e.status === 400 ? "BadRequest" : "Invalid", e.message));
        }
        const obj = bodyObject(type, namespace, name, patched);
        // A resourceVersion the patch sets is a precondition (doUpdate checks it); the uid must not change.
        const updated = doUpdate(type, obj, true, req.headers["user-agent"] ?? "unknown");
        stats.writes++;
        return send(res, 200, withType(type, updated));
      }
      case "DELETE": {
        const body = (await readJson(req)) as
          | { preconditions?: { uid?: unknown; resourceVersion?: unknown } }
          | undefined;
        const last = doDelete(type, namespace, name, body?.preconditions);
        stats.writes++;
        if (RETURNS_DELETED_OBJECT.has(type.plural)) return send(res, 200, withType(type, last));
        return send(res, 200, {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Success",
          details: detailsOf(type, name, last.metadata.uid),
        });
      }
      default:
        throw notAllowed();
    }
  };

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    stats.requests++;
    const url = new URL(req.url ?? "/", "http://fake");
    if (
      failCount > 0 &&
      (failMatch === undefined || failMatch({ method: req.method ?? "GET", path: url.pathname }))
    ) {
      failCount--;
      stats.injectedFailures++;
      req.resume();
      const reason = REASONS[failStatus] ?? "InternalError";
      return send(res, failStatus, failure(failStatus, reason, "injected failure"));
    }
    const authedByCert = options.requireClientCert === true && (req.socket as TLSSocket).authorized === true;
    if (tokens !== undefined && !authedByCert) {
      const auth = req.headers.authorization ?? "";
      if (!auth.startsWith("Bearer ") || !tokens.has(auth.slice("Bearer ".length))) {
        req.resume();
        return send(res, 401, failure(401, "Unauthorized", "Unauthorized"));
      }
    } else if (options.requireClientCert === true && !authedByCert) {
      req.resume();
      return send(res, 401, failure(401, "Unauthorized", "Unauthorized"));
    }
    handle(req, res, url).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof StatusError) return sendStatus(res, e.status);
      sendStatus(res, failure(500, "InternalError", `Internal error occurred: ${(e as Error).message}`));
    });
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
    setTokens(next: readonly string[] | undefined) {
      tokens = next === undefined ? undefined : new Set(next);
    },
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
    failRequests(count: number, code = 500, match?: (request: FakeKubeRequestInfo) => boolean) {
      failCount = count;
      failStatus = code;
      failMatch = match;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
