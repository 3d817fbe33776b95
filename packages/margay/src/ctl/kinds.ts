/**
 * The names a user may type for each resource kind (calicoctl's and kubectl's habits: singular,
 * plural, short forms), derived from `@margay/api`'s registry so a kind added there is usable at once.
 *
 * @packageDocumentation
 */

import { KIND_INFO, RESOURCE_KINDS, type ResourceKind } from "@margay/api";
import { CtlError, CtlErrorCode } from "./errors.js";

/** Extra names per kind, beyond the kind's own name and plural (case-insensitive). */
const SHORT_NAMES: Readonly<Record<string, readonly string[]>> = {
  IPPool: ["ippool", "pool", "pools"],
  IPAMConfig: ["ipamconfig", "ipamconfiguration", "ipamconfigurations"],
  IPReservation: ["ipreservation"],
  Node: ["node", "no"],
  WorkloadEndpoint: ["workloadendpoint", "wep", "weps"],
  HostEndpoint: ["hostendpoint", "hep", "heps"],
  Profile: ["profile", "pro"],
  Tier: ["tier"],
  NetworkPolicy: ["networkpolicy", "netpol", "netpols", "policy", "policies", "np"],
  GlobalNetworkPolicy: ["globalnetworkpolicy", "gnp", "gnps"],
  NetworkSet: ["networkset", "netset", "netsets"],
  GlobalNetworkSet: ["globalnetworkset", "gns"],
  BGPPeer: ["bgppeer", "bgpp"],
  BGPConfiguration: ["bgpconfig", "bgpconfiguration", "bgpconfigs"],
  AgentConfiguration: [
    "agentconfig",
    "agentconfiguration",
    "agentconfigs",
    "felixconfig",
    "felixconfiguration",
  ],
  NodeStatus: ["nodestatus"],
};

function buildIndex(): Map<string, ResourceKind> {
  const index = new Map<string, ResourceKind>();
  for (const kind of RESOURCE_KINDS) {
    for (const name of [kind, KIND_INFO[kind].plural, ...(SHORT_NAMES[kind] ?? [])])
      index.set(name.toLowerCase(), kind);
  }
  return index;
}

let INDEX: Map<string, ResourceKind> | undefined;

/** The kind a user typed (`ippools`, `gnp`, `IPPool`...). Throws `usage` naming the known kinds. */
export function resolveKind(typed: string): ResourceKind {
  INDEX ??= buildIndex();
  const kind = INDEX.get(typed.toLowerCase());
  if (kind === undefined)
    throw new CtlError(
      CtlErrorCode.Usage,
      `unknown resource type ${JSON.stringify(typed)} (known: ${kindNames().join(", ")})`,
      { kind: typed },
    );
  return kind;
}

/** The preferred lower-case name of each kind, for help texts and completion. */
export function kindNames(): string[] {
  return RESOURCE_KINDS.map((k) => SHORT_NAMES[k]?.[0] ?? k.toLowerCase());
}

/** Every accepted name (for shell completion). */
export function allKindNames(): string[] {
  INDEX ??= buildIndex();
  return [...INDEX.keys()].sort();
}

/** Whether objects of `kind` live in a namespace. */
export function isNamespaced(kind: ResourceKind): boolean {
  return KIND_INFO[kind].namespaced;
}
