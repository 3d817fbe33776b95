/**
 * Margay's model end to end, against both datastore backends:
 *   read a manifest (Margay and Calico documents) → validate → store → watch → compare-and-swap →
 *   a multi-object transaction → typed errors.
 *
 * The etcd run starts a private etcd (Debian `etcd-server`) on 127.0.0.1 with a free port and a temp
 * data dir, and stops it at the end. Run: `npx tsx examples/api-datastore.ts` (after `npm run build`);
 * `packages/margay/src/guides/examples.interop.test.ts` runs it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KIND_INFO, parseManifests, type Resource, validateResource, withDefaults } from "@margay/api";
import {
  createEtcdDatastore,
  createMemoryDatastore,
  type Datastore,
  isDatastoreError,
  type StoredObject,
} from "@margay/datastore";
import { startEtcd } from "@margay/datastore/testing";

const manifest = `
# A Calico manifest is read as is and converted to margay.io/v1.
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-ipv4
spec:
  cidr: 10.244.0.0/16
  vxlanMode: CrossSubnet
  natOutgoing: true
---
apiVersion: margay.io/v1
kind: Tier
metadata:
  name: security
spec:
  order: 100
---
apiVersion: margay.io/v1
kind: NetworkPolicy
metadata:
  name: web-ingress
  namespace: shop
spec:
  selector: app == 'web'
  types: [Ingress]
  ingress:
    - action: Allow
      protocol: TCP
      source:
        selector: role == 'frontend'
      destination:
        ports: [80, 443]
`;

/** The store validates every API resource it is given; kinds it does not know (IPAM's) pass through. */
function validateApiResource(object: StoredObject): void {
  if (object.kind in KIND_INFO) validateResource(object);
}

async function tour(name: string, ds: Datastore): Promise<void> {
  console.log(`\n=== ${name} backend`);
  const resources: Resource[] = parseManifests(manifest).items.map((i) => withDefaults(i.resource));

  // Follow NetworkPolicies from a consistent list: no gap, no duplicate.
  const { revision } = await ds.list("NetworkPolicy");
  const watch = ds.watch("NetworkPolicy", { fromRevision: revision });

  for (const r of resources) {
    const stored = await ds.create(r);
    console.log(
      `created ${stored.kind}/${stored.metadata.name} at revision ${stored.metadata.resourceVersion}`,
    );
  }

  // Compare-and-swap: two writers read the same revision; the second write loses.
  const key = { kind: "NetworkPolicy", namespace: "shop", name: "web-ingress" };
  const read = await ds.get<Resource & { kind: "NetworkPolicy" }>(key);
  await ds.update({ ...read, spec: { ...read.spec, order: 10 } });
  try {
    await ds.update({ ...read, spec: { ...read.spec, order: 20 } });
  } catch (e) {
    if (!isDatastoreError(e, "conflict")) throw e;
    console.log(`second writer lost the race: ${e.code} (retryable: ${e.retryable})`);
  }

  // One transaction: move the policy into the tier and check the tier is still as we read it.
  const tier = await ds.get({ kind: "Tier", name: "security" });
  const current = await ds.get<Resource & { kind: "NetworkPolicy" }>(key);
  const moved: Resource = { ...current, spec: { ...current.spec, tier: "security" } };
  const txn = await ds.transaction([
    { op: "check", key: { kind: "Tier", name: "security" }, resourceVersion: tier.metadata.resourceVersion! },
    { op: "update", object: moved },
  ]);
  console.log(`transaction committed at revision ${txn.revision}`);

  // Invalid input is a typed error naming the exact path; nothing is written.
  try {
    await ds.create({
      apiVersion: "margay.io/v1",
      kind: "IPPool",
      metadata: { name: "broken" },
      spec: { cidr: "10.300.0.0/16" },
    });
  } catch (e) {
    if (!isDatastoreError(e, "invalid")) throw e;
    console.log(`rejected: ${e.code}: ${(e.cause as Error).message}`);
  }

  let seen = 0;
  for await (const ev of watch) {
    console.log(`watch: ${ev.type} ${ev.object.metadata.name} @${ev.revision}`);
    if (++seen === 3) break; // added, modified (order), modified (tier); breaking closes the watch
  }
  const pools = await ds.list("IPPool");
  console.log(
    `pools: ${pools.items.map((p) => p.metadata.name).join(", ")} (list revision ${pools.revision})`,
  );
  await ds.close();
}

const dir = mkdtempSync(join(tmpdir(), "margay-example-"));
const etcd = await startEtcd();
try {
  await tour(
    "memory",
    createMemoryDatastore({ snapshotPath: join(dir, "state.json"), validate: validateApiResource }),
  );
  await tour("etcd", createEtcdDatastore({ endpoints: etcd.endpoints, validate: validateApiResource }));
} finally {
  await etcd.stop();
  rmSync(dir, { recursive: true, force: true });
}
