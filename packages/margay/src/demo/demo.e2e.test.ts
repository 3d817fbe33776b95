/**
 * `npm run demo` end to end, once: the demo program (as scripts/demo.sh runs it, on the bundles the e2e
 * tier builds) must exit 0 — every measured cell the expected one — leave no namespace behind, and write
 * a report that headless Chromium renders with its topology, four matrices and the explain trace.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { listNamespaces } from "../testing/index.js";
import { pngStats, renderInChromium } from "./chromium.js";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
const TSCONFIG = fileURLToPath(new URL("./tsconfig.demo.json", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

describe("npm run demo", () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("runs to exit 0, tears down, and writes a report Chromium renders", async () => {
    dir = await mkdtemp(join(tmpdir(), "margay-demo-test-"));
    const report = join(dir, "report.html");
    const before = await listNamespaces("demo-");
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        join(ROOT, "node_modules/.bin/tsx"),
        // As scripts/demo.sh runs it: from the workspace sources (tsconfig.demo.json's paths).
        ["--tsconfig", TSCONFIG, MAIN, "--report", report],
        { cwd: ROOT, timeout: 280_000, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) =>
          resolve({ code: err === null ? 0 : Number((err as { code?: number }).code ?? 1), stdout, stderr }),
      );
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    expect(result.stdout).toContain("All measured cells as expected.");
    expect(result.stdout).toContain(`Report: ${report}`);
    for (const step of ["node status host3", "ipam show --show-blocks", "policy explain", "label wep"])
      expect(result.stdout).toContain(step);
    expect(result.stdout).toMatch(/Established[\s\S]*Established/);
    expect(result.stdout).toMatch(/dev vxlan\.margay/);
    expect((await listNamespaces("demo-")).filter((n) => !before.includes(n))).toEqual([]);

    const html = await readFile(report, "utf8");
    expect(html).toContain('id="verdict">Every measured cell');
    const page = await renderInChromium(report);
    expect(page.dom.match(/<table class="matrix"/g)).toHaveLength(4);
    expect(page.dom.match(/<div class="host"/g)).toHaveLength(3);
    expect(page.dom).toContain("Why is it denied?");
    expect(page.dom.match(/<td class="allow changed|<td class="deny changed/g)?.length).toBeGreaterThan(0);
    const stats = pngStats(page.png);
    expect(stats.colours).toBeGreaterThan(5);
    expect(stats.inkShare).toBeGreaterThan(0.01);
  });
});
