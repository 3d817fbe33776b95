/**
 * The MTU of workload veths and tunnel devices: the configured one, else the underlay interface's MTU
 * minus the largest encapsulation overhead in use (VXLAN 50, IPIP 20: `ENCAPSULATION_OVERHEAD` of
 * `@margay/dataplane`), so one packet size fits every path a pod's traffic may take.
 *
 * @packageDocumentation
 */
import type { IPPool } from "@margay/api";
import { ENCAPSULATION_OVERHEAD, workloadMtu } from "@margay/dataplane";
import type { NodeAddresses } from "../context.js";
import type { AgentConfig } from "./types.js";

/** An encapsulation a pool or the backend uses. */
export type Encapsulation = keyof typeof ENCAPSULATION_OVERHEAD;

/** Underlay MTU assumed when the interface is unknown (an explicit IP not found on any interface). */
export const DEFAULT_UNDERLAY_MTU = 1500;

/** The smallest MTU an IPv6 link may have (RFC 8200); IPv4 workloads go down to 576. */
const MIN_MTU = 576;

/**
 * The encapsulations this node may use before it has read any pool: the default pools' modes and the
 * backend's (`vxlan` backend: VXLAN). The agent adds the modes of the pools it finds in the datastore.
 */
export function configuredEncapsulations(config: AgentConfig): Encapsulation[] {
  const out = new Set<Encapsulation>();
  if (config.networkingBackend === "vxlan") out.add("vxlan");
  for (const p of [config.defaultPools.ipv4, config.defaultPools.ipv6]) {
    if (p === undefined) continue;
    if (p.vxlanMode !== "Never") out.add("vxlan");
    if (p.ipipMode !== "Never") out.add("ipip");
  }
  return [...out];
}

/**
 * The encapsulations in use: those of the enabled pools once there is one (the datastore is the truth, so
 * a pool switched to or from VXLAN or IPIP changes the answer), else {@link configuredEncapsulations}
 * (felix decides the same way: the pools, else its configuration). The `vxlan` backend always counts
 * VXLAN: it gives the node a VTEP whatever the pools say.
 */
export function poolEncapsulations(config: AgentConfig, pools: Iterable<IPPool>): Encapsulation[] {
  const out = new Set<Encapsulation>();
  if (config.networkingBackend === "vxlan") out.add("vxlan");
  let enabled = 0;
  for (const p of pools) {
    if (p.spec.disabled === true) continue;
    enabled++;
    if (p.spec.vxlanMode !== undefined && p.spec.vxlanMode !== "Never") out.add("vxlan");
    if (p.spec.ipipMode !== undefined && p.spec.ipipMode !== "Never") out.add("ipip");
  }
  return enabled === 0 ? configuredEncapsulations(config) : [...out];
}

/**
 * Veth and tunnel MTU: `config.mtu` when set; else the underlay interface's MTU (1500 when unknown)
 * minus the largest overhead among `encapsulations` (none: the underlay MTU itself).
 */
export function deriveMtu(
  config: Pick<AgentConfig, "mtu">,
  addresses: Pick<NodeAddresses, "interfaceMtu">,
  encapsulations: Iterable<Encapsulation>,
): number {
  if (config.mtu !== undefined) return config.mtu;
  let worst: Encapsulation = "none";
  for (const e of encapsulations) if (ENCAPSULATION_OVERHEAD[e] > ENCAPSULATION_OVERHEAD[worst]) worst = e;
  return Math.max(MIN_MTU, workloadMtu(addresses.interfaceMtu ?? DEFAULT_UNDERLAY_MTU, worst));
}
