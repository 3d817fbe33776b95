import { createRecordingLogger } from "@margay/api";
import { describe, expect, it } from "vitest";
import { DataplaneError, DataplaneErrorCode, isDataplaneError } from "../errors.js";
import { namedNetns } from "../kernel/netns.js";
import type { CommandRunner, RunOptions } from "../kernel/runner.js";
import { createLinuxDataplane } from "./linux-driver.js";

/**
 * A kernel with no links and no routes whose `nft` refuses every transaction when `nftFails` (failing as
 * the process runner does on a non-zero exit).
 */
function fakeKernel(nftFails: boolean): CommandRunner {
  return {
    async run(argv: readonly string[], _options: RunOptions = {}) {
      if (argv.includes("nft") && nftFails) {
        throw new DataplaneError(DataplaneErrorCode.CommandFailed, "nft -f - (exit 1)", {
          details: { argv, exitCode: 1, stderr: "Error: Could not process rule" },
        });
      }
      return { code: 0, stdout: argv.includes("-json") ? "[]" : "", stderr: "" };
    },
  };
}

describe("the Linux driver's log", () => {
  it("logs a batch the model rejects, with its code and size, and stays usable", async () => {
    const logger = createRecordingLogger();
    const d = createLinuxDataplane({
      netns: namedNetns("x"),
      nodeName: "a",
      runner: fakeKernel(false),
      logger,
      reconcileIntervalMs: 0,
    });
    const bad = [{ kind: "no-such-update" }] as unknown as Parameters<typeof d.apply>[0];
    const err = await d.apply(bad).catch((e: unknown) => e);
    expect(isDataplaneError(err)).toBe(true);
    const [record, ...more] = logger.find({ message: "dataplane batch rejected" });
    expect(more).toEqual([]);
    expect(record).toMatchObject({
      level: "error",
      attributes: { component: "dataplane", updates: 1, code: (err as { code: string }).code },
    });
    await expect(d.apply([{ kind: "in-sync" }])).resolves.toMatchObject({ inSync: true });
    expect(logger.find({ message: "dataplane batch rejected" })).toHaveLength(1);
    await d.close();
  });

  it("logs a batch the kernel rejects (nft refuses the transaction)", async () => {
    const logger = createRecordingLogger();
    const d = createLinuxDataplane({
      netns: namedNetns("x"),
      nodeName: "a",
      runner: fakeKernel(true),
      logger,
      reconcileIntervalMs: 0,
    });
    await expect(d.apply([{ kind: "in-sync" }])).rejects.toSatisfy(isDataplaneError);
    expect(logger.find({ message: "dataplane batch rejected" })).toMatchObject([
      {
        level: "error",
        attributes: { component: "dataplane", updates: 1, code: DataplaneErrorCode.NftablesRejected },
      },
    ]);
    await d.close();
  });
});
