import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createMemoryDatastore, type StoredObject } from "../index.js";
import { flatUuid } from "./uid.js";

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("memory backend uids", () => {
  it("are random version-4 UUIDs, all different, also across refills of the random pool", () => {
    const seen = new Set<string>();
    // 256 uids per pool: several refills.
    for (let i = 0; i < 2000; i++) {
      const u = flatUuid();
      expect(u).toMatch(V4);
      seen.add(u);
    }
    expect(seen.size).toBe(2000);
  });

  it("are what a created object gets as metadata.uid", async () => {
    const ds = createMemoryDatastore();
    try {
      const probe = (name: string): StoredObject => ({
        apiVersion: "margay.io/v1",
        kind: "Probe",
        metadata: { name },
      });
      const a = await ds.create(probe("a"));
      const b = await ds.create(probe("b"));
      expect(a.metadata.uid).toMatch(V4);
      expect(b.metadata.uid).toMatch(V4);
      expect(a.metadata.uid).not.toBe(b.metadata.uid);
    } finally {
      await ds.close();
    }
  });

  it("are flat strings: a stored uid costs its 36 characters, not a tree of concatenations (#20)", () => {
    // Memory, not time: 20,000 uids kept, measured after a full GC in a child process of its own.
    // crypto.randomUUID() keeps ~500 bytes of concatenation nodes per uid; a flat one is ~56 bytes.
    const uidModule = fileURLToPath(new URL("./uid.ts", import.meta.url));
    const script = `
      import { flatUuid } from ${JSON.stringify(uidModule)};
      const keep = new Array(20000);
      gc(); const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < keep.length; i++) keep[i] = flatUuid();
      gc(); const after = process.memoryUsage().heapUsed;
      console.log(JSON.stringify({ perUid: (after - before) / keep.length, n: new Set(keep).size }));`;
    const r = spawnSync(
      process.execPath,
      ["--expose-gc", "--import", "tsx", "--input-type=module", "--eval", script],
      { encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, r.stderr).toBe(0);
    const { perUid, n } = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { perUid: number; n: number };
    expect(n).toBe(20000);
    // The slot in `keep` (8 bytes) plus a flat 36-character string (~56 bytes), with room to spare.
    expect(perUid).toBeLessThan(200);
  });
});
