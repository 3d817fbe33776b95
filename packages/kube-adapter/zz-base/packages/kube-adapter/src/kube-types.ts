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
  namespace?: string | undefined;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
  labels?: Record<string, string> | undefined;
  annotations?: Record<string, string> | undefined;
  creationTimestamp?: string | undefined;
  deletionTimestamp?: string | undefined;
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

/** `metav1.Status`, as carried by error answers and watch `ERROR` events. */
export interface KubeStatus {
  kind?: "Status" | undefined;
  apiVersion?: string | undefined;
  status?: string | undefined;
  message?: string | undefined;
  reason?: string | undefined;
  code?: number | undefined;
  metadata?: { resourceVersion?: string | undefined } | undefined;
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
