/**
 * Metadata and envelope shared by every resource.
 *
 * @packageDocumentation
 */

/** Group/version of Margay resources. */
export const API_VERSION = "margay.io/v1";
/** Group/version of Calico resources accepted (and converted) when reading manifests. */
export const CALICO_API_VERSION = "projectcalico.org/v3";

/**
 * Object metadata, as in Kubernetes/Calico `ObjectMeta`. Structurally identical to the datastore's
 * `StoredObjectMeta`, so any resource can be stored as is.
 */
export interface ObjectMeta {
  /** Name; unique per kind (and namespace, for namespaced kinds). */
  name: string;
  /** Namespace, for namespaced kinds only. */
  namespace?: string;
  /** Revision of the last write, set by the datastore; pass it back for compare-and-swap. */
  resourceVersion?: string;
  /** Unique id assigned by the datastore at creation. */
  uid?: string;
  /** RFC 3339 creation time assigned by the datastore. */
  creationTimestamp?: string;
  /** Labels, matched by selectors. */
  labels?: Record<string, string>;
  /** Free-form annotations. */
  annotations?: Record<string, string>;
}

/** The envelope every resource shares: `apiVersion`, `kind`, `metadata`, `spec`. */
export interface ResourceOf<K extends string, S> {
  /** Always `margay.io/v1`. */
  apiVersion: typeof API_VERSION;
  /** The kind name. */
  kind: K;
  /** Name, namespace, labels and datastore bookkeeping. */
  metadata: ObjectMeta;
  /** The desired state. */
  spec: S;
}
