import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ConformanceReport } from "./report.js";

const run = promisify(execFile);
const CLI = fileURLToPath(new URL("./cli.ts", import.meta.url));
const TSX = createRequire(import.meta.url).resolve("tsx");

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mgcni-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function cli(args: string[]) {
  return run(process.execPath, ["--import", TSX, CLI, ...args]).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  );
}

describe("cni-conformance CLI", () => {
  it("runs Debian's ptp + host-local from a single .conf and prints a JSON report", async () => {
    const dataDir = join(dir, "hl");
    const conf = join(dir, "ptp.conf");
    await writeFile(
      conf,
      JSON.stringify({
        cniVersion: "1.0.0",
        name: "mgcli",
        type: "ptp",
        ipam: { type: "host-local", dataDir, ranges: [[{ subnet: "10.247.0.0/24" }]] },
      }),
    );
    const r = await cli([
      "--config",
      conf,
      "--path",
      "/usr/lib/cni",
      "--host-local-data-dir",
      dataDir,
      "--scenarios",
      "version,add-check-del,gc",
      "--json",
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as ConformanceReport;
    expect(report.chain).toBe("ptp");
    expect(report.scenarios.map((s) => [s.id, s.outcome])).toEqual([
      ["version", "pass"],
      ["add-check-del", "pass"],
      ["gc", "not-applicable"],
    ]);
  });

  it("exits 2 on usage errors and unknown scenarios", async () => {
    expect((await cli([])).code).toBe(2);
    const r = await cli(["--config", "/nonexistent", "--path", "/usr/lib/cni", "--scenarios", "bogus"]);
    expect(r.code).toBe(2);
  });
});
