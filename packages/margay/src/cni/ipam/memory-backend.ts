/** Lazy-loaded seam to the memory backend (kept apart so the etcd client is never loaded for it). */
export { createMemoryDatastore } from "@margay/datastore";
