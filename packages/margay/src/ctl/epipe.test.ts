/**
 * The built margayctl whose reader goes away (`margayctl --help | head -1`): it stops quietly with exit 0
 * instead of crashing with an unhandled EPIPE and a stack on stderr.
 */

import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { MARGAYCTL_BIN, requireBuiltBinary } from "./ctl-harness.js";

describe("margayctl with a closed stdout", () => {
  it("a reader that goes away ends the command quietly (exit 0, nothing on stderr)", async () => {
    requireBuiltBinary();
    const child = spawn(process.execPath, [MARGAYCTL_BIN, "--help"], { stdio: ["ignore", "pipe", "pipe"] });
    // Close our end at once, as `head -0` would: every write of the child then fails with EPIPE.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });
});
