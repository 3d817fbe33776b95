/**
 * The Kubernetes resource types the adapter follows: where to list and watch them.
 *
 * @packageDocumentation
 */

/** Describes one Kubernetes resource type (group/version/resource) for list and watch. */
export interface KubeResourceType {
  /** Kind of the objects (`Pod`). */
  readonly kind: string;
  /** `apiVersion` of the objects (`v1`, `networking.k8s.io/v1`). */
  readonly apiVersion: string;
  /** Lower-case plural resource name in URLs (`pods`). */
  readonly plural: string;
  /** Whether objects live in namespaces. */
  readonly namespaced: boolean;
}

/**
 * The resource types this package knows, by their plural name. `services`, `endpointslices` and `leases`
 * are for informers and the client of other components; the adapter does not convert them.
 */
export const KubeResources = {
  pods: { kind: "Pod", apiVersion: "v1", plural: "pods", namespaced: true },
  namespaces: { kind: "Namespace", apiVersion: "v1", plural: "namespaces", namespaced: false },
  serviceaccounts: { kind: "ServiceAccount", apiVersion: "v1", plural: "serviceaccounts", namespaced: true },
  nodes: { kind: "Node", apiVersion: "v1", plural: "nodes", namespaced: false },
  networkpolicies: {
    kind: "NetworkPolicy",
    apiVersion: "networking.k8s.io/v1",
    plural: "networkpolicies",
    namespaced: true,
  },
  adminnetworkpolicies: {
    kind: "AdminNetworkPolicy",
    apiVersion: "policy.networking.k8s.io/v1alpha1",
    plural: "adminnetworkpolicies",
    namespaced: false,
  },
  baselineadminnetworkpolicies: {
    kind: "BaselineAdminNetworkPolicy",
    apiVersion: "policy.networking.k8s.io/v1alpha1",
    plural: "baselineadminnetworkpolicies",
    namespaced: false,
  },
  services: { kind: "Service", apiVersion: "v1", plural: "services", namespaced: true },
  endpointslices: {
    kind: "EndpointSlice",
    apiVersion: "discovery.k8s.io/v1",
    plural: "endpointslices",
    namespaced: true,
  },
  leases: { kind: "Lease", apiVersion: "coordination.k8s.io/v1", plural: "leases", namespaced: true },
} as const satisfies Record<string, KubeResourceType>;
/** Plural names of {@link KubeResources}. */
export type KubeResourceName = keyof typeof KubeResources;

/**
 * The collection path of a resource type across all namespaces, or within `namespace`:
 * `/api/v1/pods`, `/apis/networking.k8s.io/v1/namespaces/ns/networkpolicies`.
 */
export function collectionPath(type: KubeResourceType, namespace?: string): string {
  const base = type.apiVersion.includes("/") ? `/apis/${type.apiVersion}` : `/api/${type.apiVersion}`;
  return namespace === undefined
    ? `${base}/${type.plural}`
    : `${base}/namespaces/${namespace}/${type.plural}`;
}

/**
 * The path of one object: `/api/v1/namespaces/ns/pods/name`, `/api/v1/nodes/name`.
 *
 * @throws RangeError if `namespace` is missing for a namespaced type.
 */
export function objectPath(type: KubeResourceType, namespace: string | undefined, name: string): string {
  if (type.namespaced && (namespace === undefined || namespace === "")) {
    throw new RangeError(`${type.kind} ${name} needs a namespace`);
  }
  return `${collectionPath(type, type.namespaced ? namespace : undefined)}/${encodeURIComponent(name)}`;
}
