import {
  isValidationError,
  type ObjectMeta,
  parseManifests,
  type Resource,
  validateResource,
} from "@margay/api";
import { describe, expect, expectTypeOf, it } from "vitest";
import { createMemoryDatastore, type StoredObject, type StoredObjectMeta } from "./index.js";

// The datastore knows nothing of `@margay/api`; these tests pin down that its resources fit it anyway.
describe("@margay/api resources in the datastore", () => {
  it("ObjectMeta is StoredObjectMeta and every Resource is a StoredObject (checked by the typecheck)", () => {
    expectTypeOf<ObjectMeta>().toEqualTypeOf<StoredObjectMeta>();
    expectTypeOf<Resource>().toExtend<StoredObject>();
  });

  it("a stored resource, with the metadata the datastore adds, still validates", async () => {
    const { resources } = parseManifests(`
apiVersion: margay.io/v1
kind: IPPool
metadata: {name: pool-a, labels: {zone: a}}
spec: {cidr: 10.244.0.0/16, blockSize: 26}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-dns, namespace: kube-system}
spec:
  selector: k8s-app == 'kube-dns'
  ingress: [{action: Allow, protocol: UDP, destination: {ports: [53]}}]
`);
    await using ds = createMemoryDatastore();
    for (const r of resources) {
      const created = await ds.create(r);
      const back = await ds.get<Resource>({
        kind: r.kind,
        name: r.metadata.name,
        ...(r.metadata.namespace === undefined ? {} : { namespace: r.metadata.namespace }),
      });
      expect(back).toEqual(created);
      expect(back.metadata.resourceVersion).toMatch(/^[1-9][0-9]*$/);
      expect(validateResource(back)).toEqual(back);
      // A CAS update of the validated copy goes through and bumps the revision.
      const updated = await ds.update(validateResource(back));
      expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(Number(back.metadata.resourceVersion));
    }
    const { items } = await ds.list<Resource>("NetworkPolicy", { namespace: "kube-system" });
    expect(items.map((r) => r.metadata.name)).toEqual(["allow-dns"]);
  });

  it("validation runs before a write through the validate option", async () => {
    await using ds = createMemoryDatastore({
      validate: (o) => {
        validateResource(o);
      },
    });
    const e = await ds
      .create({ apiVersion: "margay.io/v1", kind: "IPPool", metadata: { name: "p" }, spec: { cidr: "nope" } })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(e).toMatchObject({ code: "invalid" });
    expect(isValidationError((e as { cause?: unknown }).cause)).toBe(true);
    expect((await ds.list("IPPool")).items).toEqual([]);
  });
});
