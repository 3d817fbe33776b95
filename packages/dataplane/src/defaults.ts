import { DEFAULT_WORKLOAD_INTERFACE_PREFIX } from "@margay/api";

/** Defaults shared by the drivers (Calico's values where users would expect them). */
export const DATAPLANE_DEFAULTS = Object.freeze({
  /** Route protocol number marking our routes (Calico uses 80 too; pick another to run side by side). */
  routeProtocol: 80,
  /** Main routing table. */
  routeTable: 254,
  /** VXLAN device name. */
  vxlanDevice: "vxlan.margay",
  /** VXLAN VNI (Calico's default). */
  vxlanVni: 4096,
  /** VXLAN UDP port (IANA). */
  vxlanPort: 4789,
  /** VXLAN device MTU: 1500 minus 50 bytes of outer headers. */
  vxlanMtu: 1450,
  /** IPIP device (the kernel's fallback device). */
  ipipDevice: "tunl0",
  /**
   * Host-side workload interface prefix: `DEFAULT_WORKLOAD_INTERFACE_PREFIX` of `@margay/api` (`mgy`), the
   * one default the plumber names veths with, `convertPod` names endpoints with and the driver polices.
   */
  ifPrefix: DEFAULT_WORKLOAD_INTERFACE_PREFIX,
  /** Periodic reconciliation (ms); 0 disables it. */
  reconcileIntervalMs: 90_000,
});
