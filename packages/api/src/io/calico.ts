/**
 * Conversion of Calico `projectcalico.org/v3` documents into Margay resources.
 *
 * Specs are shape-compatible by design; conversion renames the kinds that differ, drops what only
 * Calico's own datastore assigns (resourceVersion, uid, status...), and drops top-level spec fields
 * Margay does not implement, reporting each drop as a warning so nothing disappears silently.
 *
 * @packageDocumentation
 */
import type { ResourceKind } from "../resources/kinds.js";
import { API_VERSION } from "../resources/meta.js";
import { isPlainObject, type Obj } from "../validation/context.js";

/** Calico kind → Margay kind, for every Calico kind we can read. */
export const CALICO_KIND_MAP: Readonly<Record<string, ResourceKind>> = {
  IPPool: "IPPool",
  IPAMConfiguration: "IPAMConfig",
  IPAMConfig: "IPAMConfig",
  IPReservation: "IPReservation",
  Node: "Node",
  WorkloadEndpoint: "WorkloadEndpoint",
  HostEndpoint: "HostEndpoint",
  Profile: "Profile",
  Tier: "Tier",
  NetworkPolicy: "NetworkPolicy",
  GlobalNetworkPolicy: "GlobalNetworkPolicy",
  NetworkSet: "NetworkSet",
  GlobalNetworkSet: "GlobalNetworkSet",
  BGPPeer: "BGPPeer",
  BGPConfiguration: "BGPConfiguration",
  FelixConfiguration: "AgentConfiguration",
};

/** Metadata fields that survive conversion. Others (server-assigned or Kubernetes-only) are dropped. */
const KEPT_METADATA = ["name", "namespace", "labels", "annotations"] as const;

/** Result of converting one Calico document (still to be validated). */
export interface CalicoConversion {
  /** The converted object, `margay.io/v1`. */
  readonly object: Record<string, unknown>;
  /** One message per dropped or rewritten field. */
  readonly warnings: string[];
}

/** Felix fields whose Margay name differs. */
const FELIX_RENAMES: Readonly<Record<string, string>> = {
  nftablesRefreshInterval: "dataplaneRefreshInterval",
  iptablesRefreshInterval: "dataplaneRefreshInterval",
};

/**
 * Converts a Calico document of a supported kind to a Margay object (not yet validated). The caller
 * has checked that `CALICO_KIND_MAP[doc.kind]` exists.
 */
export function convertCalicoDocument(doc: Obj): CalicoConversion {
  const warnings: string[] = [];
  const calicoKind = doc.kind as string;
  const kind = CALICO_KIND_MAP[calicoKind]!;
  const out: Record<string, unknown> = { apiVersion: API_VERSION, kind };

  const meta = isPlainObject(doc.metadata) ? doc.metadata : undefined;
  if (meta !== undefined) {
    const m: Record<string, unknown> = {};
    for (const key of Object.keys(meta)) {
      if ((KEPT_METADATA as readonly string[]).includes(key)) m[key] = meta[key];
      else warnings.push(`dropped metadata.${key} (assigned by Calico's datastore or Kubernetes-only)`);
    }
    out.metadata = m;
  } else if (doc.metadata !== undefined) {
    out.metadata = doc.metadata;
  }

  if (Object.hasOwn(doc, "status") && doc.status !== null) warnings.push("dropped status");
  for (const key of Object.keys(doc)) {
    if (!["apiVersion", "kind", "metadata", "spec", "status"].includes(key)) {
      out[key] = doc[key]; // validation reports it as an unknown field
    }
  }

  if (Object.hasOwn(doc, "spec")) {
    const spec = doc.spec;
    if (!isPlainObject(spec)) {
      out.spec = spec;
    } else {
      const s: Record<string, unknown> = { ...spec };
      if (calicoKind === "FelixConfiguration") {
        for (const [from, to] of Object.entries(FELIX_RENAMES)) {
          if (Object.hasOwn(s, from)) {
            if (!Object.hasOwn(s, to)) {
              s[to] = s[from];
              warnings.push(`renamed spec.${from} to spec.${to}`);
            } else warnings.push(`dropped spec.${from} (spec.${to} is already set)`);
            delete s[from];
          }
        }
      }
      if (kind === "IPAMConfig" && (s.maxBlocksPerHost === undefined || s.maxBlocksPerHost === null)) {
        // Calico's default is 0 (unlimited); ours is 20. Keep the Calico meaning explicit.
        s.maxBlocksPerHost = 0;
        warnings.push("set spec.maxBlocksPerHost to 0 (Calico's default: unlimited)");
      }
      if (kind === "IPPool") {
        for (const legacy of ["ipip", "nat-outgoing"]) {
          if (Object.hasOwn(s, legacy)) {
            delete s[legacy];
            warnings.push(`dropped spec.${legacy} (Calico v1 compatibility field)`);
          }
        }
      }
      out.spec = s;
    }
  }
  return { object: out, warnings };
}
