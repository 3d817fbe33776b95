import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { pngStats, renderInChromium } from "./chromium.js";
import { type DemoReport, escapeHtml, renderReport } from "./report.js";
import { demoPods, expectedMatrix } from "./scenario.js";

const pods = demoPods(3);

function sample(failures = 0): DemoReport {
  const expected = expectedMatrix(pods, "zero-trust");
  const measured = { pods: expected.pods, cells: expected.cells.map((r) => [...r]) };
  if (failures > 0) measured.cells[0]![1] = "deny";
  return {
    title: "Margay demo <test>",
    generatedAt: "2026-01-01T00:00:00Z",
    hosts: [0, 1, 2].map((i) => ({
      name: `host${i + 1}`,
      address: `10.77.0.${11 + i}/24`,
      peers: [0, 1, 2]
        .filter((j) => j !== i)
        .map((j) => ({ address: `10.77.0.${11 + j}`, state: "Established" })),
      pods: pods
        .filter((p) => p.hostIndex === i)
        .map((p, k) => ({ id: `${p.namespace}/${p.name}`, ip: `10.244.${i}.${k}`, tier: p.labels.tier! })),
    })),
    blocks: "Block 10.244.0.0/26 64 2",
    steps: [
      {
        kind: "matrix",
        phase: "open",
        title: "Before",
        note: "n",
        expected: expectedMatrix(pods, "open"),
        measured: expectedMatrix(pods, "open"),
        highlight: [],
      },
      {
        kind: "matrix",
        phase: "zero-trust",
        title: "After",
        note: "n",
        expected,
        measured,
        highlight: [[0, 1]],
      },
      {
        kind: "explain",
        command: "margayctl policy explain --from a --to b",
        text: "DENY TCP a -> b <end of tier>",
      },
    ],
    timings: [{ step: "cluster up", seconds: 12.3 }],
    failures,
  };
}

describe("demo report", () => {
  it("has the topology, one grid per matrix with a cell per pair, and the explain trace, escaped", () => {
    const html = renderReport(sample());
    expect(html).toContain("<title>Margay demo &lt;test&gt;</title>");
    expect(html.match(/<div class="host"/g)).toHaveLength(3);
    expect(html.match(/<table class="matrix"/g)).toHaveLength(2);
    expect(html.match(/<td class="(allow|deny|self)/g)).toHaveLength(72);
    expect(html).toContain("host1 ↔ host2: Established");
    expect(html).toContain("&lt;end of tier&gt;");
    expect(html).toContain('id="verdict">Every measured cell');
    expect(html).not.toContain(" wrong");
  });

  it("marks a cell that differs from the expected one and says so", () => {
    const html = renderReport(sample(1));
    expect(html.match(/ wrong/g)).toHaveLength(1);
    expect(html).toContain("1 measured cell(s) differ");
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
  });

  const hasChromium = (() => {
    try {
      execFileSync("chromium", ["--version"], { stdio: "ignore" });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasChromium)(
    "renders in headless Chromium: grids and hosts in the DOM, a drawn screenshot",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "margay-report-"));
      try {
        const file = join(dir, "report.html");
        await writeFile(file, renderReport(sample()));
        const page = await renderInChromium(file);
        expect(page.dom.match(/<table class="matrix"/g)).toHaveLength(2);
        expect(page.dom).toContain('data-host="host3"');
        const stats = pngStats(page.png);
        expect(stats.width).toBeGreaterThan(0);
        expect(stats.colours).toBeGreaterThan(5);
        expect(stats.inkShare).toBeGreaterThan(0.01);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    120_000,
  );
});
