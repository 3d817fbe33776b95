/**
 * The table columns of `get` per kind, as calicoctl prints them (`-o wide` adds the rest). Columns are
 * data (heading + field path), so the docs and completion can list them.
 *
 * @packageDocumentation
 */

import type { ResourceKind } from "@margay/api";
import { cell, fieldAt } from "./output.js";

/** One table column. */
export interface Column {
  heading: string;
  /** The cell of one object. */
  value(o: Record<string, unknown>): string;
}

const at =
  (...path: string[]) =>
  (o: Record<string, unknown>): string =>
    cell(fieldAt(o, path));

const NAME: Column = { heading: "NAME", value: at("metadata", "name") };
const NAMESPACE: Column = { heading: "NAMESPACE", value: at("metadata", "namespace") };
const LABELS: Column = { heading: "LABELS", value: at("metadata", "labels") };

/** Columns per kind: `[default, wide extras]`. */
const COLUMNS: Partial<Record<ResourceKind | "NodeStatus", [Column[], Column[]]>> = {
  IPPool: [
    [
      NAME,
      { heading: "CIDR", value: at("spec", "cidr") },
      { heading: "SELECTOR", value: at("spec", "nodeSelector") },
    ],
    [
      { heading: "BLOCKSIZE", value: at("spec", "blockSize") },
      { heading: "IPIP", value: at("spec", "ipipMode") },
      { heading: "VXLAN", value: at("spec", "vxlanMode") },
      { heading: "NAT", value: at("spec", "natOutgoing") },
      { heading: "DISABLED", value: at("spec", "disabled") },
    ],
  ],
  Node: [
    [NAME],
    [
      { heading: "ASN", value: at("spec", "bgp", "asNumber") },
      { heading: "IPV4", value: at("spec", "bgp", "ipv4Address") },
      { heading: "IPV6", value: at("spec", "bgp", "ipv6Address") },
    ],
  ],
  WorkloadEndpoint: [
    [
      NAMESPACE,
      {
        heading: "WORKLOAD",
        value: (o) => cell(fieldAt(o, ["spec", "workload"]) ?? fieldAt(o, ["spec", "pod"])),
      },
      { heading: "NODE", value: at("spec", "node") },
      { heading: "NETWORKS", value: at("spec", "ipNetworks") },
      { heading: "INTERFACE", value: at("spec", "interfaceName") },
    ],
    [NAME, { heading: "PROFILES", value: at("spec", "profiles") }, LABELS],
  ],
  HostEndpoint: [
    [NAME, { heading: "NODE", value: at("spec", "node") }],
    [
      { heading: "INTERFACE", value: at("spec", "interfaceName") },
      { heading: "IPS", value: at("spec", "expectedIPs") },
      { heading: "PROFILES", value: at("spec", "profiles") },
    ],
  ],
  NetworkPolicy: [
    [NAMESPACE, NAME],
    [
      { heading: "TIER", value: at("spec", "tier") },
      { heading: "ORDER", value: at("spec", "order") },
      { heading: "SELECTOR", value: at("spec", "selector") },
    ],
  ],
  GlobalNetworkPolicy: [
    [NAME],
    [
      { heading: "TIER", value: at("spec", "tier") },
      { heading: "ORDER", value: at("spec", "order") },
      { heading: "SELECTOR", value: at("spec", "selector") },
    ],
  ],
  Tier: [
    [NAME, { heading: "ORDER", value: at("spec", "order") }],
    [{ heading: "DEFAULTACTION", value: at("spec", "defaultAction") }],
  ],
  Profile: [[NAME], [LABELS]],
  NetworkSet: [
    [NAMESPACE, NAME],
    [{ heading: "NETS", value: at("spec", "nets") }, LABELS],
  ],
  GlobalNetworkSet: [[NAME], [{ heading: "NETS", value: at("spec", "nets") }, LABELS]],
  BGPPeer: [
    [
      NAME,
      { heading: "PEERIP", value: at("spec", "peerIP") },
      {
        heading: "NODE",
        value: (o) =>
          fieldAt(o, ["spec", "node"]) !== undefined
            ? at("spec", "node")(o)
            : cell(fieldAt(o, ["spec", "nodeSelector"]) ?? "(global)"),
      },
      { heading: "ASN", value: at("spec", "asNumber") },
    ],
    [{ heading: "PEERSELECTOR", value: at("spec", "peerSelector") }],
  ],
  BGPConfiguration: [
    [
      NAME,
      { heading: "LOGSEVERITY", value: at("spec", "logSeverityScreen") },
      { heading: "MESHENABLED", value: at("spec", "nodeToNodeMeshEnabled") },
      { heading: "ASNUMBER", value: at("spec", "asNumber") },
    ],
    [],
  ],
  IPReservation: [[NAME, { heading: "CIDRS", value: at("spec", "reservedCIDRs") }], []],
  IPAMConfig: [
    [NAME, { heading: "STRICTAFFINITY", value: at("spec", "strictAffinity") }],
    [
      { heading: "AUTOALLOCATEBLOCKS", value: at("spec", "autoAllocateBlocks") },
      { heading: "MAXBLOCKSPERHOST", value: at("spec", "maxBlocksPerHost") },
    ],
  ],
  NodeStatus: [
    [NAME, { heading: "NODE", value: at("spec", "node") }],
    [{ heading: "UPDATED", value: at("status", "updatedAt") }],
  ],
};

/** The columns of `kind` (`wide` adds the extras). Unknown kinds get NAME (and NAMESPACE). */
export function columnsOf(kind: string, namespaced: boolean, wide: boolean): Column[] {
  const c = COLUMNS[kind as ResourceKind];
  if (c === undefined) return namespaced ? [NAMESPACE, NAME] : [NAME];
  return wide ? [...c[0], ...c[1]] : c[0];
}
