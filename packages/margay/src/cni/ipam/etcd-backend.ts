/** Lazy-loaded seam to the etcd backend. */
export { createEtcdDatastore } from "@margay/datastore";
