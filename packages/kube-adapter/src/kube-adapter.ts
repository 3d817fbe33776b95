/**
 * The adapter: one informer per Kubernetes resource type, each change converted into model resources
 * and handed to the serialized {@link ModelSync} writer, so the datastore holds exactly the converted
 * state of the cluster. Writing starts once every informer has listed (so nothing is deleted merely
 * because its source was not listed yet), with a resync that also removes what a previous run left.
 *
 * @packageDocumentation
 */

import { validateWorkloadInterfacePrefix } from "@margay/api";
import type { Datastore } from "@margay/datastore";
import { kubernetesTiers } from "@margay/policy";
import { type ResourceConverter, defaultConverters } from "./convert/converters.js";
import { KubeAdapterError, KubeAdapterErrorCode } from "./errors.js";
import type { BackoffOptions } from "./informer/backoff.js";
import {
  createInformer,
  type Informer,
  type InformerEvent,
  type InformerStats,
} from "./informer/informer.js";
import type { KubeObject, KubePod } from "./kube-types.js";
import { type Logger, silentLogger } from "./logger.js";
import type { KubeResourceName } from "./resources.js";
import {
  createModelSync,
  type ModelSync,
  type ModelSyncStats,
  type ResyncReport,
} from "./sync/model-sync.js";
import type { KubeTransport } from "./transport/transport.js";

/** Every resource type the adapter can follow. */
export const ALL_KUBE_RESOURCES: readonly KubeResourceName[] = Object.freeze([
  "namespaces",
  "serviceaccounts",
  "nodes",
  "pods",
  "networkpolicies",
  "adminnetworkpolicies",
  "baselineadminnetworkpolicies",
]);

/** Name of the pod cache index by node (`spec.nodeName`). */
export const NODE_INDEX = "node";

/** Options of {@link createKubeAdapter}. */
export interface KubeAdapterOptions {
  /** API server connection (see `createHttpTransport`, `transportFromKubeConfig`). Required. */
  transport: KubeTransport;
  /** Where the converted model is written. Required. */
  datastore: Datastore;
  /** Resource types to follow. Default {@link ALL_KUBE_RESOURCES}. */
  resources?: readonly KubeResourceName[] | undefined;
  /** Replacement converters by resource type. Default `defaultConverters`. */
  converters?: Partial<Record<KubeResourceName, ResourceConverter>> | undefined;
  /** Value of the `margay.io/owner` annotation on everything written. Default `kube-adapter`. */
  owner?: string | undefined;
  /**
   * Write the three tiers Kubernetes policies live in (`adminnetworkpolicy`, `default`,
   * `baselineadminnetworkpolicy`). Default: true when AdminNetworkPolicies or
   * BaselineAdminNetworkPolicies are followed.
   */
  tiers?: boolean | undefined;
  /**
   * Prefix of the host-side interfaces pods' endpoints name (see `workloadInterfaceName` of
   * `@margay/api`): must match the dataplane's. Default `mgy`. A bad one is a `config` error here.
   */
  interfacePrefix?: string | undefined;
  /** Items per list page. Default 500. */
  pageSize?: number | undefined;
  /** Base watch `timeoutSeconds` (each watch picks [t, 2t)). Default 300. */
  watchTimeoutSeconds?: number | undefined;
  /** Back-off of the informers. Defaults of `createBackoff`. */
  backoff?: BackoffOptions | undefined;
  /** Period of the resync that reconciles the datastore against the caches, ms; 0 disables. Default 300 000. */
  resyncIntervalMs?: number | undefined;
  /** Structured logger. Default silent. */
  logger?: Logger | undefined;
  /** Aborting closes the adapter. */
  signal?: AbortSignal | undefined;
}

/** Counters of the adapter. */
export interface KubeAdapterStats {
  /** Kubernetes objects whose conversion failed (they contribute nothing to the model). */
  convertErrors: number;
  /** Parts of objects left out of conversions (e.g. malformed policy rules, which fail closed). */
  convertIssues: number;
  /** The writer's counters. */
  sync: Readonly<ModelSyncStats>;
  /** Each informer's counters. */
  informers: Partial<Record<KubeResourceName, Readonly<InformerStats>>>;
}

/** A running adapter. */
export interface KubeAdapter {
  /** The informers by resource type. */
  readonly informers: ReadonlyMap<KubeResourceName, Informer<KubeObject>>;
  /** The writer. */
  readonly sync: ModelSync;
  /** Resolves once every informer has listed and the datastore holds the converted lists. */
  waitForSync(options?: { signal?: AbortSignal | undefined }): Promise<void>;
  /** Resolves once every queued change is written. */
  idle(): Promise<void>;
  /** Reconciles the datastore against the caches now. */
  resync(): Promise<ResyncReport>;
  /** Counters. */
  stats(): KubeAdapterStats;
  /** Stops the informers and the writer. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the adapter: informers begin listing at once, the writer once they have all listed. */
export function createKubeAdapter(options: KubeAdapterOptions): KubeAdapter {
  const logger = options.logger ?? silentLogger;
  if (options.interfacePrefix !== undefined) {
    // Checked here, once: a bad prefix would fail every pod's conversion and so remove every endpoint.
    try {
      validateWorkloadInterfacePrefix(options.interfacePrefix);
    } catch (cause) {
      throw new KubeAdapterError(KubeAdapterErrorCode.Config, "invalid interfacePrefix", { cause });
    }
  }
  const names = [...new Set(options.resources ?? ALL_KUBE_RESOURCES)];
  const converters = new Map<KubeResourceName, ResourceConverter>();
  for (const n of names) {
    const c =
      options.converters?.[n] ??
      (defaultConverters as Partial<Record<KubeResourceName, ResourceConverter>>)[n];
    if (c === undefined) {
      throw new KubeAdapterError(KubeAdapterErrorCode.Config, `no converter for resource ${n}`);
    }
    converters.set(n, c);
  }
  const tiers =
    options.tiers ??
    (names.includes("adminnetworkpolicies") || names.includes("baselineadminnetworkpolicies"));
  const kinds = [...converters.values()].flatMap((c) => c.modelKinds);
  if (tiers) kinds.push("Tier");
  const sync = createModelSync({ datastore: options.datastore, kinds, owner: options.owner, logger });
  if (tiers) sync.setDesired("Static/kubernetes-tiers", undefined, kubernetesTiers());

  let convertErrors = 0;
  let convertIssues = 0;
  const abort = new AbortController();
  const onOuterAbort = () => void close();
  options.signal?.addEventListener("abort", onOuterAbort, { once: true });

  const informers = new Map<KubeResourceName, Informer<KubeObject>>();
  for (const [name, converter] of converters) {
    const kind = converter.resource.kind;
    // The key being converted, for issue reports (conversion is synchronous, one event at a time).
    let converting = "";
    const context = {
      interfacePrefix: options.interfacePrefix,
      onIssue: (error: unknown) => {
        convertIssues++;
        logger.warn({ kind, key: converting, error }, "part of an object left out of its conversion");
      },
    };
    const onEvent = (e: InformerEvent<KubeObject>) => {
      const source = `${kind}/${e.key}`;
      if (e.type === "deleted") return sync.removeSource(source);
      let objects: ReturnType<ResourceConverter["convert"]>;
      converting = e.key;
      try {
        objects = converter.convert(e.object, context);
      } catch (error) {
        convertErrors++;
        logger.warn({ kind, key: e.key, error }, "cannot convert object; it contributes nothing");
        return sync.removeSource(source);
      }
      sync.setDesired(source, e.object.metadata.uid, objects);
    };
    informers.set(
      name,
      createInformer<KubeObject>({
        transport: options.transport,
        resource: converter.resource,
        pageSize: options.pageSize,
        watchTimeoutSeconds: options.watchTimeoutSeconds,
        backoff: options.backoff,
        logger,
        signal: abort.signal,
        onEvent,
        ...(name === "pods"
          ? {
              indexers: {
                [NODE_INDEX]: (o: KubeObject) => {
                  const node = (o as KubePod).spec?.nodeName;
                  return node === undefined || node === "" ? [] : [node];
                },
              },
            }
          : {}),
      }),
    );
  }

  const allSynced = Promise.all([...informers.values()].map((i) => i.waitForSync())).then(() => {
    if (abort.signal.aborted) return;
    sync.start();
    logger.info({ resources: names }, "informers synced; writing the model");
  });
  // Closing before the first list rejects `allSynced`; only callers of waitForSync see that.
  allSynced.catch(() => {});

  const resyncIntervalMs = options.resyncIntervalMs ?? 300_000;
  const timer =
    resyncIntervalMs > 0
      ? setInterval(() => {
          if (informers.size > 0 && [...informers.values()].every((i) => i.hasSynced())) {
            sync.resync().catch((error) => logger.warn({ error }, "periodic resync failed"));
          }
        }, resyncIntervalMs)
      : undefined;
  timer?.unref();

  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      if (timer !== undefined) clearInterval(timer);
      options.signal?.removeEventListener("abort", onOuterAbort);
      abort.abort();
      await Promise.all([...informers.values()].map((i) => i.close()));
      await sync.close();
    })();
    return closing;
  }

  return {
    informers,
    sync,
    async waitForSync(waitOptions = {}) {
      const signal = waitOptions.signal;
      if (signal?.aborted) {
        throw new KubeAdapterError(KubeAdapterErrorCode.Aborted, "wait aborted", { cause: signal.reason });
      }
      let onAbort: (() => void) | undefined;
      const aborted = new Promise<never>((_, reject) => {
        onAbort = () =>
          reject(
            new KubeAdapterError(KubeAdapterErrorCode.Aborted, "wait aborted", { cause: signal?.reason }),
          );
        signal?.addEventListener("abort", onAbort, { once: true });
      });
      aborted.catch(() => {});
      try {
        await Promise.race([allSynced, aborted]);
        await Promise.race([sync.idle(), aborted]);
      } finally {
        if (onAbort !== undefined) signal?.removeEventListener("abort", onAbort);
      }
    },
    idle: () => sync.idle(),
    resync: () => sync.resync(),
    stats() {
      const inf: Partial<Record<KubeResourceName, Readonly<InformerStats>>> = {};
      for (const [n, i] of informers) inf[n] = { ...i.stats };
      return { convertErrors, convertIssues, sync: { ...sync.stats }, informers: inf };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
