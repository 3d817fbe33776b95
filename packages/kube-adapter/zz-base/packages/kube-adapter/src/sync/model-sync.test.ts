import { createMemoryDatastore, type StoredObject } from "@margay/datastore";
import { afterEach, describe, expect, it } from "vitest";
import { createModelSync } from "./model-sync.js";
import { OWNER_ANNOTATION, SOURCE_ANNOTATION, SOURCE_UID_ANNOTATION } from "./ownership.js";

const profile = (name: string, v: string): StoredObject & { spec: unknown } => ({
  apiVersion: "margay.io/v1",
  kind: "Profile",
  metadata: { name, labels: { v } },
  spec: { labelsToApply: { v } },
});

const ds = createMemoryDatastore();
afterEach(async () => {
  for (const o of (await ds.list("Profile")).items)
    await ds.delete({ kind: "Profile", name: o.metadata.name });
});

describe("ModelSync", () => {
  it("writes desired objects with ownership, updates with CAS, deletes what a source no longer yields", async () => {
    const sync = createModelSync({ datastore: ds, kinds: ["Profile"] });
    sync.setDesired("Namespace/a", "uid-a", [profile("kns.a", "1")]);
    sync.setDesired("Namespace/b", "uid-b", [profile("kns.b", "1")]);
    expect(await ds.list("Profile")).toMatchObject({ items: [] });
    sync.start();
    await sync.idle();
    const a = await ds.get({ kind: "Profile", name: "kns.a" });
    expect(a.metadata.annotations).toEqual({
      [OWNER_ANNOTATION]: "kube-adapter",
      [SOURCE_ANNOTATION]: "Namespace/a",
      [SOURCE_UID_ANNOTATION]: "uid-a",
    });
    sync.setDesired("Namespace/a", "uid-a", [profile("kns.a", "2")]);
    sync.removeSource("Namespace/b");
    await sync.idle();
    const names = (await ds.list("Profile")).items.map((o) => [o.metadata.name, o.metadata.labels?.v]);
    expect(names).toEqual([["kns.a", "2"]]);
    expect(sync.stats).toMatchObject({ creates: 2, updates: 1, deletes: 1 });
    // Setting the same content again writes nothing.
    sync.setDesired("Namespace/a", "uid-a", [profile("kns.a", "2")]);
    await sync.idle();
    expect(sync.stats.updates).toBe(1);
    await sync.close();
  });

  it("never overwrites or deletes objects it does not own", async () => {
    await ds.create(profile("kns.mine-by-hand", "hand"));
    await ds.create(profile("unrelated", "hand"));
    const sync = createModelSync({ datastore: ds, kinds: ["Profile"] });
    sync.setDesired("Namespace/mine-by-hand", undefined, [profile("kns.mine-by-hand", "k8s")]);
    sync.start();
    await sync.idle();
    const kept = await ds.get({ kind: "Profile", name: "kns.mine-by-hand" });
    expect(kept.metadata.labels).toEqual({ v: "hand" });
    expect(sync.stats.foreignSkips).toBe(1);
    sync.removeSource("Namespace/mine-by-hand");
    await sync.idle();
    expect((await ds.list("Profile")).items.map((o) => o.metadata.name).sort()).toEqual([
      "kns.mine-by-hand",
      "unrelated",
    ]);
    await sync.close();
  });

  it("re-reads and retries on CAS conflicts caused by other writers, and restores owned objects", async () => {
    const sync = createModelSync({ datastore: ds, kinds: ["Profile"] });
    sync.setDesired("Namespace/a", undefined, [profile("kns.a", "1")]);
    sync.start();
    await sync.idle();
    // Someone edits our object behind our back: the next update conflicts, re-reads, and wins.
    const cur = await ds.get({ kind: "Profile", name: "kns.a" });
    await ds.update({ ...cur, metadata: { ...cur.metadata, labels: { v: "tampered" } } });
    sync.setDesired("Namespace/a", undefined, [profile("kns.a", "2")]);
    await sync.idle();
    expect((await ds.get({ kind: "Profile", name: "kns.a" })).metadata.labels).toEqual({ v: "2" });
    expect(sync.stats.conflicts).toBe(1);
    // Someone deletes it: a resync notices and recreates it.
    await ds.delete({ kind: "Profile", name: "kns.a" });
    expect(await sync.resync()).toEqual({ missing: 1, stale: 0, changed: 0 });
    await sync.idle();
    expect((await ds.get({ kind: "Profile", name: "kns.a" })).metadata.labels).toEqual({ v: "2" });
    await sync.close();
  });

  it("removes owned objects a previous run left behind, on its start-up resync", async () => {
    const first = createModelSync({ datastore: ds, kinds: ["Profile"] });
    first.setDesired("Namespace/gone", undefined, [profile("kns.gone", "1")]);
    first.setDesired("Namespace/kept", undefined, [profile("kns.kept", "1")]);
    first.start();
    await first.idle();
    await first.close();
    const second = createModelSync({ datastore: ds, kinds: ["Profile"] });
    second.setDesired("Namespace/kept", undefined, [profile("kns.kept", "1")]);
    second.start();
    await second.idle();
    expect((await ds.list("Profile")).items.map((o) => o.metadata.name)).toEqual(["kns.kept"]);
    expect(second.stats).toMatchObject({ creates: 0, updates: 0, deletes: 1 });
    await second.close();
  });
});
