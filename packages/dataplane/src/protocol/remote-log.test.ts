import { PassThrough } from "node:stream";
import { createRecordingLogger } from "@margay/api";
import { describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import { createMemoryDataplane } from "../memory/memory-driver.js";
import { createRemoteDataplane } from "./remote.js";
import { serveDataplane } from "./serve.js";

describe("the remote driver's log", () => {
  it("logs a batch the driver on the other side rejects, and a lost stream", async () => {
    const toDriver = new PassThrough();
    const fromDriver = new PassThrough();
    void serveDataplane(createMemoryDataplane({ nodeName: "node-a" }), {
      input: toDriver,
      output: fromDriver,
    });
    const logger = createRecordingLogger();
    const remote = await createRemoteDataplane({ input: fromDriver, output: toDriver, logger });
    const bad = [{ kind: "no-such-update" }] as unknown as Parameters<typeof remote.apply>[0];
    const err = await remote.apply(bad).catch((e: unknown) => e);
    expect(isDataplaneError(err)).toBe(true);
    expect(logger.find({ message: "dataplane batch rejected" })).toMatchObject([
      {
        level: "error",
        attributes: {
          component: "dataplane",
          remote: true,
          updates: 1,
          code: (err as { code: string }).code,
        },
      },
    ]);
    fromDriver.end();
    await expect(remote.apply([{ kind: "in-sync" }])).rejects.toSatisfy(isDataplaneError);
    expect(logger.find({ message: "dataplane driver stream lost" })).toHaveLength(1);
    await remote.close();
    expect(logger.find({ message: "dataplane driver stream lost" })).toHaveLength(1);
  });

  it("logs nothing when the driver ends its stream after a close", async () => {
    const toDriver = new PassThrough();
    const fromDriver = new PassThrough();
    const served = serveDataplane(createMemoryDataplane({ nodeName: "node-a" }), {
      input: toDriver,
      output: fromDriver,
    });
    const logger = createRecordingLogger();
    const remote = await createRemoteDataplane({
      input: fromDriver,
      output: toDriver,
      logger,
      onClose: async () => {
        toDriver.end();
        await served;
        fromDriver.end();
      },
    });
    await remote.apply([{ kind: "in-sync" }]);
    await remote.close();
    expect(logger.records).toEqual([]);
  });
});
