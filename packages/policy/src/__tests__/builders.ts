/** Small constructors for model resources in unit tests. */
import {
  API_VERSION,
  type GlobalNetworkPolicy,
  type GlobalNetworkPolicySpec,
  type GlobalNetworkSet,
  type HostEndpoint,
  type HostEndpointSpec,
  type NetworkPolicy,
  type NetworkPolicySpec,
  type Profile,
  type ProfileSpec,
  type Tier,
  type WorkloadEndpoint,
  type WorkloadEndpointSpec,
} from "@margay/api";

export function wep(
  id: string,
  ip: string,
  labels: Record<string, string> = {},
  spec: Partial<WorkloadEndpointSpec> = {},
): WorkloadEndpoint {
  const [namespace, name] = id.split("/") as [string, string];
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: { name, namespace, labels },
    spec: {
      node: "n1",
      interfaceName: `cali-${name}`,
      ipNetworks: [`${ip}/32`],
      profiles: [`kns.${namespace}`],
      ...spec,
    },
  };
}

export function hep(
  name: string,
  ip: string,
  labels: Record<string, string> = {},
  spec: Partial<HostEndpointSpec> = {},
): HostEndpoint {
  return {
    apiVersion: API_VERSION,
    kind: "HostEndpoint",
    metadata: { name, labels },
    spec: { node: "n1", interfaceName: "eth0", expectedIPs: [ip], ...spec },
  };
}

export function gnp(name: string, spec: GlobalNetworkPolicySpec): GlobalNetworkPolicy {
  return { apiVersion: API_VERSION, kind: "GlobalNetworkPolicy", metadata: { name }, spec };
}

export function np(id: string, spec: NetworkPolicySpec): NetworkPolicy {
  const [namespace, name] = id.split("/") as [string, string];
  return { apiVersion: API_VERSION, kind: "NetworkPolicy", metadata: { name, namespace }, spec };
}

export function tier(name: string, order: number, defaultAction: "Deny" | "Pass" = "Deny"): Tier {
  return { apiVersion: API_VERSION, kind: "Tier", metadata: { name }, spec: { order, defaultAction } };
}

export function profile(name: string, spec: ProfileSpec): Profile {
  return { apiVersion: API_VERSION, kind: "Profile", metadata: { name }, spec };
}

/** The usual namespace profile: allow everything, namespace labels prefixed. */
export function nsProfile(ns: string, labels: Record<string, string> = {}): Profile {
  const applied: Record<string, string> = { "pcns.projectcalico.org/name": ns };
  for (const [k, v] of Object.entries(labels)) applied[`pcns.${k}`] = v;
  return profile(`kns.${ns}`, {
    ingress: [{ action: "Allow" }],
    egress: [{ action: "Allow" }],
    labelsToApply: applied,
  });
}

export function gns(name: string, labels: Record<string, string>, nets: string[]): GlobalNetworkSet {
  return { apiVersion: API_VERSION, kind: "GlobalNetworkSet", metadata: { name, labels }, spec: { nets } };
}
