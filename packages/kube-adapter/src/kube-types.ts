/**
 * Structural views of the Kubernetes objects the adapter reads. Any object of this shape works: a parsed
 * API response, a `@kubernetes/client-node` model, a manifest. Only the fields the converters use are
 * named; everything else passes through untouched.
 *
 * @packageDocumentation
 */

/** `metav1.ObjectMeta`, the fields the adapter reads. */
export interface KubeObjectMeta {
  name: string;
  /** Prefix from which the API server makes a unique name when `name` is empty (on create). */
  generateName?: string | undefined;
  namespace?: string | undefined;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
  labels?: Record<string, string> | undefined;
  annotations?: Record<string, string> | undefined;
  creationTimestamp?: string | undefined;
  deletionTimestamp?: string | undefined;
  /** Incremented by the API server on every change of the desired state (`spec`), not of `status`. */
  generation?: number | undefined;
  /** Server-side apply bookkeeping; informers drop it by default (see `InformerOptions.transform`). */
  managedFields?: unknown[] | undefined;
  ownerReferences?:
    | { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean | undefined }[]
    | undefined;
}

/** Any Kubernetes object. */
export interface KubeObject {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  metadata: KubeObjectMeta;
}

/** `v1.ContainerPort`. */
export interface KubeContainerPort {
  name?: string | undefined;
  containerPort: number;
  protocol?: "TCP" | "UDP" | "SCTP" | undefined;
  hostPort?: number | undefined;
  hostIP?: string | undefined;
}

/** `v1.Pod`, the fields the adapter reads. */
export interface KubePod extends KubeObject {
  spec?:
    | {
        nodeName?: string | undefined;
        hostNetwork?: boolean | undefined;
        serviceAccountName?: string | undefined;
        containers?: { name: string; ports?: KubeContainerPort[] | undefined }[] | undefined;
        initContainers?:
          | { name: string; restartPolicy?: string | undefined; ports?: KubeContainerPort[] | undefined }[]
          | undefined;
      }
    | undefined;
  status?:
    | {
        phase?: string | undefined;
        podIP?: string | undefined;
        podIPs?: { ip: string }[] | undefined;
      }
    | undefined;
}

/** `v1.NodeAddress`. */
export interface KubeNodeAddress {
  type: string;
  address: string;
}

/** `v1.Node`, the fields the adapter reads. */
export interface KubeNode extends KubeObject {
  spec?: { podCIDR?: string | undefined; podCIDRs?: string[] | undefined } | undefined;
  status?: { addresses?: KubeNodeAddress[] | undefined } | undefined;
}

/** `v1.ServicePort`. */
export interface KubeServicePort {
  name?: string | undefined;
  protocol?: "TCP" | "UDP" | "SCTP" | undefined;
  port: number;
  targetPort?: number | string | undefined;
  nodePort?: number | undefined;
}

/** `v1.Service`, the fields service-IP advertisement reads. */
export interface KubeService extends KubeObject {
  spec?:
    | {
        type?: "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName" | undefined;
        /** `None` for a headless service. */
        clusterIP?: string | undefined;
        clusterIPs?: string[] | undefined;
        externalIPs?: string[] | undefined;
        loadBalancerIP?: string | undefined;
        /** `Local`: only nodes with a local endpoint should attract external traffic. */
        externalTrafficPolicy?: "Cluster" | "Local" | undefined;
        /** `Local`: cluster-internal traffic stays on the node it arrives at. */
        internalTrafficPolicy?: "Cluster" | "Local" | undefined;
        ipFamilies?: ("IPv4" | "IPv6")[] | undefined;
        selector?: Record<string, string> | undefined;
        ports?: KubeServicePort[] | undefined;
      }
    | undefined;
  status?: { loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] | undefined } } | undefined;
}

/** The label naming the Service an EndpointSlice belongs to. */
export const ENDPOINTSLICE_SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** `discovery.k8s.io/v1` `Endpoint` (one entry of an EndpointSlice). */
export interface KubeEndpoint {
  addresses: string[];
  conditions?:
    | { ready?: boolean | undefined; serving?: boolean | undefined; terminating?: boolean | undefined }
    | undefined;
  hostname?: string | undefined;
  /** The node hosting this endpoint. */
  nodeName?: string | undefined;
  zone?: string | undefined;
  targetRef?:
    | { kind?: string; namespace?: string; name?: string; uid?: string; resourceVersion?: string }
    | undefined;
}

/** `discovery.k8s.io/v1` `EndpointSlice`; its Service is named by {@link ENDPOINTSLICE_SERVICE_NAME_LABEL}. */
export interface KubeEndpointSlice extends KubeObject {
  addressType: "IPv4" | "IPv6" | "FQDN";
  /** `null` on the wire when empty. */
  endpoints: KubeEndpoint[] | null;
  ports?:
    | {
        name?: string | undefined;
        protocol?: "TCP" | "UDP" | "SCTP" | undefined;
        port?: number | undefined;
        appProtocol?: string | undefined;
      }[]
    | null
    | undefined;
}

/**
 * `coordination.k8s.io/v1` `Lease`. Times are `metav1.MicroTime` strings
 * (`2006-01-02T15:04:05.000000Z`); fields are `null` or absent when unset.
 */
export interface KubeLease extends KubeObject {
  spec?:
    | {
        holderIdentity?: string | null | undefined;
        leaseDurationSeconds?: number | null | undefined;
        acquireTime?: string | null | undefined;
        renewTime?: string | null | undefined;
        leaseTransitions?: number | null | undefined;
        strategy?: string | null | undefined;
        preferredHolder?: string | null | undefined;
      }
    | undefined;
}

/** `metav1.Status`, as carried by error answers and watch `ERROR` events. */
export interface KubeStatus {
  kind?: "Status" | undefined;
  apiVersion?: string | undefined;
  status?: string | undefined;
  message?: string | undefined;
  reason?: string | undefined;
  code?: number | undefined;
  metadata?: { resourceVersion?: string | undefined } | undefined;
  /** Which object the failure concerns, and for 422 which fields. */
  details?:
    | {
        name?: string | undefined;
        group?: string | undefined;
        kind?: string | undefined;
        uid?: string | undefined;
        causes?: { reason?: string; message?: string; field?: string }[] | undefined;
        retryAfterSeconds?: number | undefined;
      }
    | undefined;
}

/** A list answer (`PodList`, ...). */
export interface KubeList<T extends KubeObject = KubeObject> {
  kind?: string | undefined;
  apiVersion?: string | undefined;
  metadata: {
    resourceVersion?: string | undefined;
    continue?: string | undefined;
    remainingItemCount?: number;
  };
  items: T[];
}

/** Watch event types, as the API server spells them. */
export type KubeWatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** One line of a watch stream. */
export interface KubeWatchEvent<T extends KubeObject = KubeObject> {
  type: KubeWatchEventType;
  object: T | KubeStatus;
}

/** Cache key of an object: `namespace/name`, or `name` for cluster-scoped objects (as client-go). */
export function objectKey(obj: KubeObject): string {
  const ns = obj.metadata.namespace;
  return ns === undefined || ns === "" ? obj.metadata.name : `${ns}/${obj.metadata.name}`;
}
