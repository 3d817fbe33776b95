import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildFixturePlugin } from "../__fixtures__/build-fixture.js";
import type { NetConf, NetConfList } from "../spec/types.js";
import { type Invocation, runBadInput, STRICT_BAD_INPUTS, validAddInvocation } from "./bad-input.js";
import { createNetns, netnsLinks, type TestNetns } from "./netns.js";
import { rawExec } from "./raw-exec.js";
import { formatReport } from "./report.js";
import { runConformance } from "./run-conformance.js";

// The toolkit's own plugin (tests/__fixtures__/veth-plugin.ts, built on pluginMain) through the kit and
// the malformed-input table, in namespaces created here.

let dir: string;
let bin: string;
let dataDir: string;
const network = "mgtestnet";

function allocations(): Promise<string[]> {
  return readdir(join(dataDir, network)).catch(() => []);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mgcni-fixture-"));
  dataDir = join(dir, "data");
  bin = await buildFixturePlugin("veth-plugin", dir, "mgtest-veth");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("mgtest-veth (a pluginMain plugin) through the conformance kit", () => {
  it("passes every scenario at 1.1.0, including STATUS and GC", async () => {
    const config: NetConfList = {
      cniVersion: "1.1.0",
      name: network,
      plugins: [{ type: "mgtest-veth", subnet: "10.252.0.0/24", dataDir }],
    };
    const report = await runConformance({ config, path: [dir], allocations });
    const outcomes = Object.fromEntries(report.scenarios.map((s) => [s.id, s.outcome]));
    expect(outcomes, formatReport(report)).toEqual({
      version: "pass",
      "add-check-del": "pass",
      "del-without-add": "pass",
      "del-twice": "pass",
      "del-after-netns-gone": "pass",
      "bad-input": "pass",
      "chained-prev-result": "not-applicable",
      "concurrent-adds": "pass",
      status: "pass",
      gc: "pass",
    });
    expect(report.testedVersion).toBe("1.1.0");
    expect(await allocations()).toEqual([]);
  });

  it("reports a failing STATUS as a failed scenario", async () => {
    const config: NetConfList = {
      cniVersion: "1.1.0",
      name: network,
      plugins: [{ type: "mgtest-veth", subnet: "10.252.0.0/24", dataDir, unavailable: true }],
    };
    const report = await runConformance({ config, path: [dir], scenarios: ["status"] });
    expect(report.scenarios[0]).toMatchObject({ id: "status", outcome: "fail" });
    expect(report.scenarios[0]!.reason).toMatch(/CNI error 50/);
  });
});

describe(`bad-input table (${STRICT_BAD_INPUTS.length + 1} cases) against mgtest-veth`, () => {
  let ns: TestNetns;
  let valid: Invocation;
  let conf: NetConf;
  beforeAll(async () => {
    ns = await createNetns("mgcni");
    conf = { cniVersion: "1.1.0", name: network, type: "mgtest-veth", subnet: "10.252.1.0/24", dataDir };
    valid = validAddInvocation(conf, { netns: ns.path, path: [dir] });
  });
  afterAll(async () => {
    await ns.close();
  });

  it("has at least 30 cases", () => {
    expect(STRICT_BAD_INPUTS.length).toBeGreaterThanOrEqual(30);
  });

  for (const c of STRICT_BAD_INPUTS) {
    it(`${c.name} → ${c.expectCode === "any" ? "an error" : `code ${c.expectCode}`}, exit non-zero, nothing allocated`, async () => {
      const r = await runBadInput(bin, c, valid, conf);
      expect(r.ok, r.observed).toBe(true);
      expect(r.exec.exitCode).not.toBe(0);
      expect(r.exec.stdout.trim().split("\n")).toHaveLength(1);
      expect(await allocations()).toEqual([]);
      expect((await netnsLinks(ns.name)).map((l) => l.ifname)).toEqual(["lo"]);
    });
  }

  it("a failure after allocation (plugin code 101) releases the address and the interface", async () => {
    const stdin = JSON.stringify({ ...conf, failAfterAlloc: true });
    const r = await rawExec(bin, valid.env, stdin);
    expect(r.exitCode).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ cniVersion: "1.1.0", code: 101 });
    expect(await allocations()).toEqual([]);
    expect((await netnsLinks(ns.name)).map((l) => l.ifname)).toEqual(["lo"]);
  });
});
