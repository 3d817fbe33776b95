import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRecordingLogger } from "@margay/api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createMemoryDatastore } from "../index.js";

describe("the memory backend's log", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "mgds-log-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("logs a snapshot it cannot write (async durability: the write is acknowledged, then only the log tells)", async () => {
    const logger = createRecordingLogger();
    // The snapshot's directory does not exist: every snapshot write fails.
    const path = join(dir, "missing", "state.json");
    const ds = createMemoryDatastore({ snapshotPath: path, durability: "async", logger });
    try {
      await ds.create({ apiVersion: "margay.io/v1", kind: "Probe", metadata: { name: "a" } });
      await ds.flush().catch(() => undefined);
      expect(logger.find({ message: "datastore snapshot write failed" })).toMatchObject([
        {
          level: "error",
          attributes: { component: "datastore", backend: "memory", path, reason: "not-durable" },
        },
      ]);
    } finally {
      // close() flushes too, and fails the same way.
      await ds.close().catch(() => undefined);
    }
  });
});
