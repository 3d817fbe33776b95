/**
 * What the environment of a driver under test must provide. The memory driver needs nothing; a kernel
 * driver needs an uplink holding `hostAddress` (so flat next hops in its subnet resolve) and existing
 * interfaces named `workloadIfNames` (see `prepareLinuxConformanceNetns`).
 */
export const CONFORMANCE_FIXTURE = Object.freeze({
  /** Node name the driver must be created with. */
  nodeName: "node-a",
  /** The node's underlay address. */
  hostAddress: "10.99.0.1/24",
  /** Interfaces local workload routes and endpoints point at. */
  workloadIfNames: Object.freeze(["mgyconf0", "mgyconf1"]),
});
