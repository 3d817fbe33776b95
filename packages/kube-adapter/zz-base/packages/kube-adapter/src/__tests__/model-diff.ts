/** Compares a datastore with the converted state of a fake API server (tests only). */

import type { Datastore, StoredObject } from "@margay/datastore";
import { kubernetesTiers } from "@margay/policy";
import { defaultConverters } from "../convert/converters.js";
import { objectKey } from "../kube-types.js";
import type { KubeResourceName } from "../resources.js";
import { fingerprint } from "../sync/fingerprint.js";
import { isOwnedBy, SOURCE_ANNOTATION, withOwnership } from "../sync/ownership.js";
import type { FakeKubeApiServer } from "../testing/index.js";

const MODEL_KINDS = ["WorkloadEndpoint", "Profile", "Node", "NetworkPolicy", "GlobalNetworkPolicy", "Tier"];

const idOf = (o: StoredObject) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

/** The model the server's current state converts to (with ownership annotations), by key. */
export function expectedModel(server: FakeKubeApiServer, owner = "kube-adapter"): Map<string, StoredObject> {
  const out = new Map<string, StoredObject>();
  for (const [name, conv] of Object.entries(defaultConverters)) {
    for (const k of server.list(name as KubeResourceName)) {
      let objs: StoredObject[];
      try {
        objs = conv.convert(k);
      } catch {
        continue;
      }
      for (const o of objs) {
        const owned = withOwnership(o, owner, `${conv.resource.kind}/${objectKey(k)}`, k.metadata.uid);
        out.set(idOf(owned), owned);
      }
    }
  }
  for (const t of kubernetesTiers()) {
    const owned = withOwnership(t, owner, "Static/kubernetes-tiers", undefined);
    out.set(idOf(owned), owned);
  }
  return out;
}

/** Missing, stale (present but not expected, or different) and duplicated (one source, two objects). */
export interface ModelDiff {
  missing: string[];
  stale: string[];
  duplicates: string[];
  owned: number;
}

/** Diffs the owned objects of `ds` against `expected`. */
export async function diffModel(
  ds: Datastore,
  expected: Map<string, StoredObject>,
  owner = "kube-adapter",
): Promise<ModelDiff> {
  const actual = new Map<string, StoredObject>();
  const sources = new Map<string, number>();
  for (const kind of MODEL_KINDS) {
    for (const o of (await ds.list(kind)).items) {
      if (!isOwnedBy(o, owner)) continue;
      actual.set(idOf(o), o);
      const src = `${o.kind}|${o.metadata.annotations?.[SOURCE_ANNOTATION]}`;
      if (o.kind !== "Tier") sources.set(src, (sources.get(src) ?? 0) + 1);
    }
  }
  const missing = [...expected.keys()].filter((id) => !actual.has(id));
  const stale = [...actual.keys()].filter(
    (id) => !expected.has(id) || fingerprint(expected.get(id)!) !== fingerprint(actual.get(id)!),
  );
  const duplicates = [...sources].filter(([, n]) => n > 1).map(([s]) => s);
  return { missing, stale, duplicates, owned: actual.size };
}
