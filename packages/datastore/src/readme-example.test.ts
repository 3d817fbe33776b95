// The README's example, run as written; the test also checks that the README shows exactly this code.
import { readFileSync } from "node:fs";
import { expect, it, vi } from "vitest";

const logged: unknown[][] = [];
const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void logged.push(args));

// README example: start
import { createMemoryDatastore, isDatastoreError } from "@margay/datastore";

const ds = createMemoryDatastore({ snapshotPath: "/tmp/margay-example.json" });

// Follow the kind from a consistent list (no gap, no duplicate).
const { items, revision } = await ds.list("IPPool");
const watch = ds.watch("IPPool", { fromRevision: revision });

const pool = await ds.create({
  apiVersion: "margay.io/v1",
  kind: "IPPool",
  metadata: { name: `pool-${items.length}` },
  spec: { cidr: "10.244.0.0/16", blockSize: 26 },
});

// Compare-and-swap: passes only if nobody wrote the pool since we read it.
try {
  await ds.update({ ...pool, spec: { cidr: "10.244.0.0/16", blockSize: 28 } });
} catch (e) {
  if (isDatastoreError(e, "conflict")) console.log("lost a race; re-read and retry");
  else throw e;
}

for await (const ev of watch) {
  console.log(ev.type, ev.object.metadata.name, "at revision", ev.revision);
  if (ev.type === "modified") break; // breaking out closes the watch
}
await ds.close();
// README example: end
log.mockRestore();

it("runs the README example, and the README shows exactly this code", () => {
  expect(logged.map((l) => l.join(" "))).toEqual([
    expect.stringMatching(/^added pool-\d+ at revision \d+$/),
    expect.stringMatching(/^modified pool-\d+ at revision \d+$/),
  ]);
  const source = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  expect(readFileSync(new URL("../README.md", import.meta.url), "utf8")).toContain(code.trim());
});
