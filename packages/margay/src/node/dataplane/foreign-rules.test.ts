import { createRecordingLogger } from "@margay/api";
import {
  type CommandRunner,
  createMemoryDataplane,
  type ForeignChainFinding,
  namedNetns,
} from "@margay/dataplane";
import { afterEach, describe, expect, it } from "vitest";
import { type AgentDriver, createAgentDriver } from "./driver.js";
import { createForeignRulesMonitor } from "./foreign-rules.js";
import { type RunningDataplanePipeline, startDataplanePipeline } from "./pipeline.js";
import { eventually, testContext } from "./pipeline.test-util.js";

const FINDING: ForeignChainFinding = {
  family: "inet",
  table: "filter",
  chain: "forward",
  hook: "forward",
  priority: -10,
  ourPriority: 0,
  order: "before",
  why: "policy drop",
};
const KUBE: ForeignChainFinding = {
  family: "ip",
  table: "kube-proxy",
  chain: "filter-forward",
  hook: "forward",
  priority: -110,
  ourPriority: 0,
  order: "before",
  why: "1 rule that drops",
  owner: "kube-proxy (nftables mode)",
};
const MESSAGE = "foreign nftables chain may drop traffic margay allows";

describe("foreign rules monitor", () => {
  it("warns once per new finding, keeps findings, and survives a failed read", async () => {
    const logger = createRecordingLogger();
    const results: (readonly ForeignChainFinding[] | Error)[] = [
      [FINDING],
      [FINDING, KUBE],
      new Error("nft gone"),
      [KUBE],
    ];
    const m = createForeignRulesMonitor({
      logger,
      read: async () => {
        const r = results.shift()!;
        if (r instanceof Error) throw r;
        return r;
      },
    });
    expect(m.findings()).toEqual([]);
    await m.check();
    expect(m.findings()).toEqual([FINDING]);
    await m.check();
    await m.check();
    expect(m.findings()).toEqual([FINDING, KUBE]);
    await m.check();
    expect(m.findings()).toEqual([KUBE]);
    const warns = logger.find({ level: "warn", message: MESSAGE });
    expect(warns.map((w) => w.attributes.table)).toEqual(["filter", "kube-proxy"]);
    expect(warns[0]!.attributes.detail).toBe(
      "foreign nftables chain inet/filter/forward (hook forward, priority -10, policy drop) runs before margay's and may drop traffic margay allows",
    );
    expect(logger.find({ level: "debug", message: "foreign nftables rules check failed" })).toHaveLength(1);
    m.close();
  });

  it("re-checks every interval after start and stops at close", async () => {
    let reads = 0;
    const m = createForeignRulesMonitor({
      logger: createRecordingLogger(),
      intervalMs: 5,
      read: async () => {
        reads++;
        return [];
      },
    });
    m.start();
    await eventually(() => reads >= 3);
    m.close();
    const after = reads;
    await new Promise((r) => setTimeout(r, 30));
    expect(reads).toBeLessThanOrEqual(after + 1);
  });
});

describe("dataplane pipeline: foreign rules", () => {
  const running: RunningDataplanePipeline[] = [];
  afterEach(async () => {
    for (const p of running.splice(0)) await p.close();
  });

  it("checks at the first in-sync, exposes findings in status() and stays ready", async () => {
    const ctx = testContext();
    const inner = createMemoryDataplane({ nodeName: "node-a" });
    let reads = 0;
    const driver: AgentDriver = Object.assign(inner, {
      foreignRules: async () => {
        reads++;
        return [FINDING];
      },
    });
    const p = await startDataplanePipeline(ctx, { driver, foreignRulesIntervalMs: 60_000 });
    running.push(p);
    expect(p.status().foreignRules).toEqual([]);
    await eventually(() => p.status().foreignRules.length === 1);
    expect(p.status().foreignRules).toEqual([FINDING]);
    expect(reads).toBe(1);
    expect(ctx.logger.find({ level: "warn", message: MESSAGE })).toHaveLength(1);
    expect(ctx.health.snapshot().components.dataplane).toEqual({ live: true, ready: true });
  });

  it("reports no foreign rules for a driver that cannot tell", async () => {
    const ctx = testContext();
    const p = await startDataplanePipeline(ctx, { driver: createMemoryDataplane({ nodeName: "node-a" }) });
    running.push(p);
    await eventually(() => p.inSync);
    expect(p.status().foreignRules).toEqual([]);
  });
});

describe("Linux agent driver: foreignRules", () => {
  it("reads nft -j list ruleset and the iptables-legacy save tools in the driver's namespace", async () => {
    const calls: string[][] = [];
    const nftJson = JSON.stringify({
      nftables: [
        {
          chain: {
            family: "inet",
            table: "filter",
            name: "forward",
            hook: "forward",
            prio: -10,
            policy: "drop",
          },
        },
        {
          chain: {
            family: "inet",
            table: "margay",
            name: "forward",
            hook: "forward",
            prio: 0,
            policy: "accept",
          },
        },
      ],
    });
    const runner: CommandRunner = {
      async run(argv) {
        calls.push([...argv]);
        const tool = argv[argv.indexOf("--") + 1];
        if (tool === "nft") return { code: 0, stdout: nftJson, stderr: "" };
        if (tool === "iptables-legacy-save")
          return { code: 0, stdout: "*filter\n:FORWARD DROP [0:0]\nCOMMIT\n", stderr: "" };
        throw new Error("spawn ENOENT");
      },
    };
    const driver = await createAgentDriver(testContext(), { runner, netns: namedNetns("agent1") });
    try {
      const found = await driver.foreignRules!();
      expect(found.map((f) => `${f.family}/${f.table}/${f.chain} ${f.order} ${f.why}`)).toEqual([
        "inet/filter/forward before policy drop",
        "ip/filter/FORWARD same-priority policy drop",
      ]);
      expect(calls).toEqual([
        ["nsenter", "--net=/run/netns/agent1", "--", "nft", "-j", "list", "ruleset"],
        ["nsenter", "--net=/run/netns/agent1", "--", "iptables-legacy-save"],
        ["nsenter", "--net=/run/netns/agent1", "--", "ip6tables-legacy-save"],
      ]);
    } finally {
      await driver.close();
    }
  });
});
