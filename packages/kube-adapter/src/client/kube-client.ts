/**
 * A typed client for the API server's object verbs (get, list, create, update, patch, delete) over a
 * {@link KubeTransport}. Failures are {@link KubeAdapterError}s whose code follows the HTTP status and
 * whose message is the API server's `Status.message`: `not-found` (404), `conflict` (409, `details.reason`
 * `AlreadyExists` or `Conflict`), `gone` (410), `invalid` (422), `forbidden` (403), `unauthorized` (401).
 *
 * @packageDocumentation
 */

import { httpError, KubeAdapterError, KubeAdapterErrorCode } from "../errors.js";
import type { KubeList, KubeObject, KubeStatus } from "../kube-types.js";
import {
  collectionPath,
  type KubeResourceName,
  KubeResources,
  type KubeResourceType,
  objectPath,
} from "../resources.js";
import type { KubeHttpMethod, KubeResponse, KubeTransport } from "../transport/transport.js";
import { readBody } from "../transport/transport.js";

/** A resource type, or the plural name of one of {@link KubeResources}. */
export type KubeResourceRef = KubeResourceType | KubeResourceName;

/** Options every call accepts. */
export interface KubeCallOptions {
  /** Aborting cancels the request (`aborted`). */
  signal?: AbortSignal | undefined;
}

/** Options of {@link KubeClient.list}. */
export interface KubeListOptions extends KubeCallOptions {
  /** Only this namespace (namespaced types). Default: all namespaces. */
  namespace?: string | undefined;
  /** A label selector (`app=web,tier in (a,b),!legacy`). */
  labelSelector?: string | undefined;
  /** A field selector (`spec.nodeName=node-1`, `metadata.name!=x`). */
  fieldSelector?: string | undefined;
  /** Items per page; every page is read. Default 500. */
  pageSize?: number | undefined;
}

/** Patch flavours and their content types. */
export const KubePatchContentType = {
  /** RFC 7386 JSON merge patch: maps merge, `null` deletes, lists are replaced. */
  merge: "application/merge-patch+json",
  /** RFC 6902 JSON patch: a list of `{op, path, value}` operations. */
  json: "application/json-patch+json",
  /** Kubernetes strategic merge patch (built-in types only; custom resources answer 415). */
  strategic: "application/strategic-merge-patch+json",
} as const;
/** Keys of {@link KubePatchContentType}. */
export type KubePatchType = keyof typeof KubePatchContentType;

/** Options of {@link KubeClient.patch}. */
export interface KubePatchOptions extends KubeCallOptions {
  /** Which patch flavour `patch` is. */
  type: KubePatchType;
}

/** Options of {@link KubeClient.delete}. */
export interface KubeDeleteOptions extends KubeCallOptions {
  /** Delete only if the object still has this uid / resourceVersion (else `conflict`). */
  preconditions?: { uid?: string | undefined; resourceVersion?: string | undefined } | undefined;
}

/** The object verbs of one API server. */
export interface KubeClient {
  /** The transport requests go through. */
  readonly transport: KubeTransport;
  /** Reads one object; `undefined` if it does not exist (404). */
  get<T extends KubeObject = KubeObject>(
    type: KubeResourceRef,
    namespace: string | undefined,
    name: string,
    options?: KubeCallOptions,
  ): Promise<T | undefined>;
  /** Lists objects, following every page; the list's resourceVersion is that of the first page. */
  list<T extends KubeObject = KubeObject>(
    type: KubeResourceRef,
    options?: KubeListOptions,
  ): Promise<KubeList<T>>;
  /** Creates `object` (namespace from its metadata); an existing name fails with `conflict`/`AlreadyExists`. */
  create<T extends KubeObject>(type: KubeResourceRef, object: T, options?: KubeCallOptions): Promise<T>;
  /**
   * Replaces `object` (PUT). With `metadata.resourceVersion` set, the write succeeds only if the object is
   * still at that version; otherwise `conflict`/`Conflict` (optimistic concurrency).
   */
  update<T extends KubeObject>(type: KubeResourceRef, object: T, options?: KubeCallOptions): Promise<T>;
  /** Patches an object; `patch` is the merge document or the JSON patch operation list. */
  patch<T extends KubeObject = KubeObject>(
    type: KubeResourceRef,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    options: KubePatchOptions,
  ): Promise<T>;
  /** Deletes an object; returns what the server answers (the object's last state, or a `Status`). */
  delete<T extends KubeObject = KubeObject>(
    type: KubeResourceRef,
    namespace: string | undefined,
    name: string,
    options?: KubeDeleteOptions,
  ): Promise<T | KubeStatus>;
}

function resolve(type: KubeResourceRef): KubeResourceType {
  if (typeof type !== "string") return type;
  const t = (KubeResources as Record<string, KubeResourceType>)[type];
  if (t === undefined) {
    throw new KubeAdapterError(KubeAdapterErrorCode.Invalid, `unknown resource ${type}`, {
      details: { kind: type },
    });
  }
  return t;
}

function pathOf(type: KubeResourceType, namespace: string | undefined, name: string, what: string): string {
  if (typeof name !== "string" || name === "") {
    throw new KubeAdapterError(KubeAdapterErrorCode.Invalid, `${what}: ${type.kind} needs a name`, {
      details: { kind: type.kind },
    });
  }
  if (type.namespaced && (namespace === undefined || namespace === "")) {
    throw new KubeAdapterError(
      KubeAdapterErrorCode.Invalid,
      `${what}: ${type.kind} ${name} needs a namespace`,
      {
        details: { kind: type.kind, object: name },
      },
    );
  }
  return objectPath(type, namespace, name);
}

function objectName(type: KubeResourceType, namespace: string | undefined, name: string): string {
  return type.namespaced && namespace !== undefined ? `${namespace}/${name}` : name;
}

/** Creates a client over `transport`. */
export function createKubeClient(transport: KubeTransport): KubeClient {
  async function call<R>(
    method: KubeHttpMethod,
    path: string,
    type: KubeResourceType,
    object: string | undefined,
    options: { body?: unknown; contentType?: string; signal?: AbortSignal | undefined },
  ): Promise<{ status: number; body: R }> {
    const res: KubeResponse = await transport.request(method, path, {
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
      signal: options.signal,
    });
    let text: string;
    try {
      text = (await readBody(res)).toString("utf8");
    } finally {
      res.destroy();
    }
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch (cause) {
      if (res.status >= 200 && res.status < 300) {
        throw new KubeAdapterError(KubeAdapterErrorCode.Decode, `malformed JSON in ${method} answer`, {
          details: { path, method, kind: type.kind, object },
          cause,
        });
      }
      // A proxy's HTML error page: the HTTP status still says what failed.
    }
    if (res.status >= 200 && res.status < 300) return { status: res.status, body: parsed as R };
    const status = (typeof parsed === "object" && parsed !== null ? parsed : {}) as KubeStatus;
    throw httpError(res.status, status.message ?? `HTTP ${res.status}`, {
      path,
      ...(method === "GET" ? {} : { method }),
      kind: type.kind,
      object,
      reason: status.reason,
      ...(status.details?.causes === undefined ? {} : { causes: status.details.causes }),
    });
  }

  const withTypeMeta = <T extends KubeObject>(type: KubeResourceType, object: T): T => ({
    ...object,
    apiVersion: object.apiVersion ?? type.apiVersion,
    kind: object.kind ?? type.kind,
  });

  return {
    transport,
    async get<T extends KubeObject>(
      ref: KubeResourceRef,
      namespace: string | undefined,
      name: string,
      options: KubeCallOptions = {},
    ) {
      const type = resolve(ref);
      const path = pathOf(type, namespace, name, "get");
      const res = await transport.request("GET", path, { signal: options.signal });
      if (res.status === 404) {
        res.destroy();
        return undefined;
      }
      let text: string;
      try {
        text = (await readBody(res)).toString("utf8");
      } finally {
        res.destroy();
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (cause) {
        if (res.status === 200) {
          throw new KubeAdapterError(KubeAdapterErrorCode.Decode, "malformed JSON in get answer", {
            details: { path, kind: type.kind, object: objectName(type, namespace, name) },
            cause,
          });
        }
      }
      if (res.status === 200) return parsed as T;
      const status = (typeof parsed === "object" && parsed !== null ? parsed : {}) as KubeStatus;
      throw httpError(res.status, status.message ?? `HTTP ${res.status}`, {
        path,
        kind: type.kind,
        object: objectName(type, namespace, name),
        reason: status.reason,
      });
    },
    async list<T extends KubeObject>(ref: KubeResourceRef, options: KubeListOptions = {}) {
      const type = resolve(ref);
      const base = collectionPath(type, type.namespaced ? options.namespace : undefined);
      const pageSize = options.pageSize ?? 500;
      const items: T[] = [];
      let first: KubeList<T> | undefined;
      let cont: string | undefined;
      do {
        const q = new URLSearchParams();
        q.set("limit", String(pageSize));
        if (options.labelSelector !== undefined) q.set("labelSelector", options.labelSelector);
        if (options.fieldSelector !== undefined) q.set("fieldSelector", options.fieldSelector);
        if (cont !== undefined) q.set("continue", cont);
        const { body } = await call<KubeList<T>>("GET", `${base}?${q}`, type, undefined, {
          signal: options.signal,
        });
        if (typeof body !== "object" || body === null || !Array.isArray(body.items)) {
          throw new KubeAdapterError(KubeAdapterErrorCode.Decode, "list answer without items", {
            details: { path: base, kind: type.kind },
          });
        }
        first ??= body;
        items.push(...body.items);
        cont = body.metadata?.continue === "" ? undefined : body.metadata?.continue;
      } while (cont !== undefined);
      const metadata = { ...first.metadata };
      delete metadata.continue;
      delete metadata.remainingItemCount;
      return { kind: first.kind, apiVersion: first.apiVersion, metadata, items };
    },
    async create<T extends KubeObject>(ref: KubeResourceRef, object: T, options: KubeCallOptions = {}) {
      const type = resolve(ref);
      const ns = object.metadata?.namespace;
      if (type.namespaced && (ns === undefined || ns === "")) {
        throw new KubeAdapterError(KubeAdapterErrorCode.Invalid, `create: ${type.kind} needs a namespace`, {
          details: { kind: type.kind, object: object.metadata?.name },
        });
      }
      const path = collectionPath(type, type.namespaced ? ns : undefined);
      const object_ = objectName(type, ns, object.metadata?.name ?? "");
      return (
        await call<T>("POST", path, type, object_, {
          body: withTypeMeta(type, object),
          signal: options.signal,
        })
      ).body;
    },
    async update<T extends KubeObject>(ref: KubeResourceRef, object: T, options: KubeCallOptions = {}) {
      const type = resolve(ref);
      const ns = object.metadata?.namespace;
      const path = pathOf(type, ns, object.metadata?.name, "update");
      return (
        await call<T>("PUT", path, type, objectName(type, ns, object.metadata.name), {
          body: withTypeMeta(type, object),
          signal: options.signal,
        })
      ).body;
    },
    async patch<T extends KubeObject>(
      ref: KubeResourceRef,
      namespace: string | undefined,
      name: string,
      patch: unknown,
      options: KubePatchOptions,
    ) {
      const type = resolve(ref);
      const path = pathOf(type, namespace, name, "patch");
      const contentType = KubePatchContentType[options.type];
      if (contentType === undefined) {
        throw new KubeAdapterError(
          KubeAdapterErrorCode.Invalid,
          `unknown patch type ${String(options.type)}`,
          {
            details: { kind: type.kind, object: objectName(type, namespace, name) },
          },
        );
      }
      return (
        await call<T>("PATCH", path, type, objectName(type, namespace, name), {
          body: patch,
          contentType,
          signal: options.signal,
        })
      ).body;
    },
    async delete<T extends KubeObject>(
      ref: KubeResourceRef,
      namespace: string | undefined,
      name: string,
      options: KubeDeleteOptions = {},
    ) {
      const type = resolve(ref);
      const path = pathOf(type, namespace, name, "delete");
      const pre = options.preconditions;
      const body =
        pre === undefined
          ? undefined
          : {
              kind: "DeleteOptions",
              apiVersion: "v1",
              preconditions: {
                ...(pre.uid === undefined ? {} : { uid: pre.uid }),
                ...(pre.resourceVersion === undefined ? {} : { resourceVersion: pre.resourceVersion }),
              },
            };
      return (
        await call<T | KubeStatus>("DELETE", path, type, objectName(type, namespace, name), {
          body,
          signal: options.signal,
        })
      ).body;
    },
  };
}
