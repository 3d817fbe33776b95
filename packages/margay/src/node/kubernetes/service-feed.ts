/**
 * Services and EndpointSlices of the cluster, for service-IP advertisement: two kube-adapter informers
 * (list+watch, resume, relist on 410) whose caches keep only the fields advertisement reads (type,
 * cluster/external IPs, traffic policy, load-balancer ingress; endpoints' node, readiness and whether
 * they have addresses), so a large cluster costs little memory.
 *
 * @packageDocumentation
 */
import type { Logger } from "@margay/api";
import {
  ENDPOINTSLICE_SERVICE_NAME_LABEL,
  type KubeEndpointSlice,
  KubeResources,
  type KubeService,
  type KubeTransport,
  createInformer,
} from "@margay/kube-adapter";

/** What service advertisement reads. */
export interface ServiceFeed {
  services(): Iterable<KubeService>;
  endpointSlices(): Iterable<KubeEndpointSlice>;
  /** Both informers listed once. */
  readonly synced: boolean;
  /** Called (coalesced per macrotask) after any change or the initial sync. Returns an unsubscribe. */
  onChange(listener: () => void): () => void;
  close(): Promise<void>;
}

/** Keeps what advertisement reads of a Service. */
export function slimService(s: KubeService): KubeService {
  const sp = s.spec ?? {};
  return {
    metadata: {
      name: s.metadata.name,
      namespace: s.metadata.namespace,
      resourceVersion: s.metadata.resourceVersion,
    },
    spec: {
      ...(sp.type === undefined ? {} : { type: sp.type }),
      ...(sp.clusterIP === undefined ? {} : { clusterIP: sp.clusterIP }),
      ...(sp.clusterIPs === undefined ? {} : { clusterIPs: sp.clusterIPs }),
      ...(sp.externalIPs === undefined ? {} : { externalIPs: sp.externalIPs }),
      ...(sp.externalTrafficPolicy === undefined ? {} : { externalTrafficPolicy: sp.externalTrafficPolicy }),
    },
    ...(s.status?.loadBalancer?.ingress === undefined
      ? {}
      : {
          status: {
            loadBalancer: {
              ingress: s.status.loadBalancer.ingress.map((i) => ({
                ...(i.ip === undefined ? {} : { ip: i.ip }),
              })),
            },
          },
        }),
  };
}

/** Keeps what advertisement reads of an EndpointSlice. */
export function slimEndpointSlice(s: KubeEndpointSlice): KubeEndpointSlice {
  const svc = s.metadata.labels?.[ENDPOINTSLICE_SERVICE_NAME_LABEL];
  return {
    metadata: {
      name: s.metadata.name,
      namespace: s.metadata.namespace,
      resourceVersion: s.metadata.resourceVersion,
      ...(svc === undefined ? {} : { labels: { [ENDPOINTSLICE_SERVICE_NAME_LABEL]: svc } }),
    },
    addressType: s.addressType,
    endpoints: (s.endpoints ?? []).map((e) => ({
      // One address stands for "has addresses"; the addresses themselves are not advertised.
      addresses: e.addresses.slice(0, 1),
      ...(e.nodeName === undefined ? {} : { nodeName: e.nodeName }),
      ...(e.conditions?.ready === undefined ? {} : { conditions: { ready: e.conditions.ready } }),
    })),
  };
}

/** Options of {@link startServiceFeed}. */
export interface ServiceFeedOptions {
  readonly transport: KubeTransport;
  readonly logger?: Logger | undefined;
  readonly signal?: AbortSignal | undefined;
}

/** Starts both informers; returns at once. */
export function startServiceFeed(options: ServiceFeedOptions): ServiceFeed {
  const listeners = new Set<() => void>();
  let pending: NodeJS.Immediate | undefined;
  let closed = false;
  const changed = () => {
    if (pending !== undefined || closed) return;
    pending = setImmediate(() => {
      pending = undefined;
      if (!services.hasSynced() || !slices.hasSynced()) return;
      for (const l of listeners) {
        try {
          l();
        } catch (err) {
          options.logger?.error({ err }, "service feed listener failed");
        }
      }
    });
  };
  const common = {
    transport: options.transport,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    onEvent: changed,
  };
  const services = createInformer<KubeService>({
    ...common,
    resource: KubeResources.services,
    transform: slimService,
  });
  const slices = createInformer<KubeEndpointSlice>({
    ...common,
    resource: KubeResources.endpointslices,
    transform: slimEndpointSlice,
  });
  void Promise.all([services.waitForSync(), slices.waitForSync()]).then(changed, () => {});
  return {
    services: () => services.cache.values(),
    endpointSlices: () => slices.cache.values(),
    get synced() {
      return services.hasSynced() && slices.hasSynced();
    },
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      if (pending !== undefined) clearImmediate(pending);
      listeners.clear();
      await Promise.all([services.close(), slices.close()]);
    },
  };
}
