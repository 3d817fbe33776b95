import { createMemoryDatastore } from "../index.js";
import { describeDatastoreConformance } from "../conformance/index.js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

describeDatastoreConformance("memory", async () => {
  const ds = createMemoryDatastore();
  return { ds, compact: (rev) => ds.compact(rev), cleanup: () => ds.close() };
});

// The same contract with a snapshot file and synchronous durability (every write awaits an fsync'd file).
describeDatastoreConformance("memory with snapshot (durability sync)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "margay-ds-conf-"));
  const ds = createMemoryDatastore({ snapshotPath: join(dir, "state.json") });
  return {
    ds,
    compact: (rev) => ds.compact(rev),
    cleanup: async () => {
      await ds.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
