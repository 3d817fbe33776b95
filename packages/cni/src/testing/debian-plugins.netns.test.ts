import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NetConfList, PluginConf } from "../spec/types.js";
import { hostLocalAllocations } from "./allocations.js";
import { formatReport } from "./report.js";
import { runConformance } from "./run-conformance.js";

// Proof that the kit judges plugins nobody here wrote: Debian's containernetworking-plugins 1.1.1 in
// /usr/lib/cni. They speak up to 1.0.0, so the kit tests them at 1.0.0 and marks STATUS/GC not
// applicable (probing shows libcni's skeleton of that release rejects those verbs with code 3, "missing
// containerID", because it validates CNI_CONTAINERID before looking at the verb). The one known
// deviation: run without CNI_COMMAND, libcni's skeleton prints its "about" text and exits 0 where the
// spec asks for code 4; the kit records that as a SHOULD deviation.

const CNI_BIN = "/usr/lib/cni";
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "mgcni-hostlocal-"));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** The expected report for both chains: outcome and what the reason must say. */
const EXPECTED: Array<[string, "pass" | "fail" | "not-applicable", RegExp]> = [
  ["version", "pass", /tested at 1\.0\.0/],
  ["add-check-del", "pass", /CHECK ok; DEL removed it and released the address/],
  ["del-without-add", "pass", /succeeds/],
  ["del-twice", "pass", /second DEL succeeds/],
  ["del-after-netns-gone", "pass", /releases the address/],
  ["bad-input", "pass", /^15\/16 .*SHOULD deviations: CNI_COMMAND missing → exit 0 \(wanted code 4\)$/],
  ["chained-prev-result", "pass", /passed prevResult along/],
  ["concurrent-adds", "pass", /4 parallel ADDs got 4 distinct addresses; all released/],
  [
    "status",
    "not-applicable",
    /^tested at 1\.0\.0: STATUS is a 1\.1\.0 verb; \S+ rejects it \(code 3\), \S+ rejects it \(code 3\)$/,
  ],
  [
    "gc",
    "not-applicable",
    /^tested at 1\.0\.0: GC is a 1\.1\.0 verb; \S+ rejects it \(code 3\), \S+ rejects it \(code 3\)$/,
  ],
];

// Built when a test runs, not when the file is collected: `dataDir` only exists after beforeAll, and a
// config captured earlier would send host-local to its default /var/lib/cni on the real host.
function chain(name: string, main: PluginConf, second: PluginConf, subnet: string): NetConfList {
  if (dataDir === undefined) throw new Error("chain() called before beforeAll created dataDir");
  return {
    cniVersion: "1.0.0",
    cniVersions: ["0.4.0", "1.0.0", "1.1.0"],
    name,
    plugins: [
      {
        ...main,
        ipam: { type: "host-local", dataDir, ranges: [[{ subnet }]], routes: [{ dst: "0.0.0.0/0" }] },
      },
      second,
    ],
  };
}

describe("Debian containernetworking-plugins 1.1.1 through the kit", () => {
  const cases: Array<[string, () => NetConfList]> = [
    [
      "bridge + host-local → portmap",
      () =>
        chain(
          "mgdeb-bridge",
          { type: "bridge", bridge: "mgcnibr0", isGateway: true },
          { type: "portmap", capabilities: { portMappings: true } },
          "10.253.0.0/24",
        ),
    ],
    [
      "ptp + host-local → tuning",
      () =>
        chain(
          "mgdeb-ptp",
          { type: "ptp" },
          { type: "tuning", sysctl: { "net.ipv4.conf.all.log_martians": "0" } },
          "10.253.1.0/24",
        ),
    ],
  ];
  for (const [title, makeConfig] of cases) {
    it(`${title}: the expected report`, async () => {
      const config = makeConfig();
      expect((config.plugins[0]!.ipam as { dataDir?: string }).dataDir).toBe(dataDir);
      const report = await runConformance({
        config,
        path: [CNI_BIN],
        allocations: hostLocalAllocations(dataDir, config.name),
      });
      const table = formatReport(report);
      expect(report.testedVersion).toBe("1.0.0");
      for (const vs of Object.values(report.supportedVersions))
        expect(vs).toEqual(["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]);
      expect(
        report.scenarios.map((s) => [s.id, s.outcome]),
        table,
      ).toEqual(EXPECTED.map(([id, outcome]) => [id, outcome]));
      for (const [id, , reason] of EXPECTED)
        expect(report.scenarios.find((s) => s.id === id)!.reason, table).toMatch(reason);
      expect(report.summary).toEqual({ pass: 8, fail: 0, notApplicable: 2 });
      expect(await hostLocalAllocations(dataDir, config.name)()).toEqual([]);
    });
  }

  it("a list at 1.1.0 only has no version in common with them: every scenario but VERSION fails", async () => {
    const config: NetConfList = { ...cases[1]![1](), cniVersion: "1.1.0", cniVersions: ["1.1.0"] };
    const report = await runConformance({ config, path: [CNI_BIN], scenarios: ["version", "add-check-del"] });
    expect(report.scenarios.map((s) => s.outcome)).toEqual(["pass", "fail"]);
    expect(report.scenarios[1]!.reason).toMatch(/no version shared/);
  });
});
