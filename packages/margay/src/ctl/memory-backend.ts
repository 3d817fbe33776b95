/** Seam to the memory backend: the bundle resolves it to that module alone (no etcd client loaded). */
export { createMemoryDatastore } from "@margay/datastore";
