/** Seam to the etcd backend: embedded in the bundle as a code string, evaluated on first use. */
export { createEtcdDatastore } from "@margay/datastore";
