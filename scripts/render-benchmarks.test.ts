import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot, summarize } from "./bench-kit.js";
import { type Run, render, verdict } from "./render-benchmarks.js";
import { loadScaleRun, renderScale, withScaleSection } from "./render-scale.js";

const s = (...xs: number[]) => summarize(xs);

describe("summarize", () => {
  it("gives min, median (mean of the middle two for an even count) and max", () => {
    expect(s(3, 1, 2)).toMatchObject({ min: 1, median: 2, max: 3, n: 3 });
    expect(s(4, 1, 2, 3)).toMatchObject({ min: 1, median: 2.5, max: 4, n: 4 });
    expect(() => summarize([])).toThrow();
  });
});

describe("verdict", () => {
  it("says slower, never faster, when our time is the higher one", () => {
    const v = verdict(s(1.2, 1.3, 1.4), s(0.9, 1.0, 1.1), "lower", "time");
    expect(v.text).toBe("Margay 1.30× slower");
    expect(v.ratio).toBeCloseTo(1.3);
  });
  it("says faster when our time is lower, and flags overlapping ranges", () => {
    expect(verdict(s(0.5, 0.5, 0.5), s(1, 1, 1), "lower", "time").text).toBe("Margay 2.00× faster");
    expect(verdict(s(0.5, 0.8, 1.2), s(0.9, 1, 1.1), "lower", "time").text).toBe(
      "Margay 1.25× faster (ranges overlap)",
    );
  });
  it("reads ops/s the other way round, and memory in its own words", () => {
    expect(verdict(s(50), s(100), "higher", "rate").text).toBe("Margay 2.00× lower throughput");
    expect(verdict(s(300), s(100), "lower", "memory").text).toBe("Margay 3.00× more memory");
    expect(verdict(s(100), s(101), "lower", "memory").text).toBe("even");
  });
  it("gives no ratio when a median is zero (below what the method resolves)", () => {
    const v = verdict(s(0, 0, 0), s(0.1, 0.2, 0.3), "lower", "time");
    expect(v.text).toBe("below the measurement resolution");
    expect(v.ratio).toBeNaN();
  });
});

function fixture(): Run {
  const dev = (device: string, load: number, rss: number) => ({
    device,
    loadSeconds: s(load * 0.9, load, load * 1.1),
    loadSecondsUpper: s(load, load * 1.1, load * 1.2),
    propagateSeconds: s(1, 1.1, 1.2),
    rssBytesPerRoute: s(rss, rss, rss),
    rssBytesPerRouteWithOutbound: s(rss * 2, rss * 2, rss * 2),
    pollQueryMs: s(1, 2, 3),
  });
  return {
    quick: false,
    startedAt: "2026-12-07T00:00:00.000Z",
    finishedAt: "2026-12-07T01:00:00.000Z",
    machine: {
      cpuModel: "Test CPU @ 3.0GHz",
      cores: 2,
      memoryBytes: 24 * 2 ** 30,
      kernel: "6.1.0-test",
      node: "v20.20.2",
      loadAverageAtStart: [0.1, 0.2, 0.3],
      loadAverageAtEnd: [0.4, 0.5, 0.6],
    },
    tools: { bird: "BIRD version 2.0.12", frr: null },
    packages: {
      bgp: {
        exitCode: 0,
        seconds: 10,
        results: {
          bgp: {
            routes: 1_000_000,
            repeat: 3,
            pollMs: 100,
            generator: "node",
            versions: { bird: "2.0.12" },
            sinkOnlyControlSeconds: s(0.03, 0.03, 0.03),
            // We lose the load time to BIRD and win the memory.
            results: [dev("margay", 0.4, 60), dev("bird", 0.3, 90)],
          },
          "bgp-wire": {
            prefixes: 1000,
            repeat: 7,
            rows: [{ name: "encodeUpdates (pack)", millis: s(1, 2, 3), prefixesPerSecond: 500_000 }],
          },
        },
      },
      dataplane: {
        exitCode: 0,
        seconds: 1,
        results: {
          dataplane: {
            scale: { routes: 500, endpoints: 50, policies: 10, ipSets: 11, nftBytes: 4096 },
            fullSync: { oursMs: s(3, 4), naiveRawMs: s(5, 6), fairRawMs: s(4, 5) },
            oneEndpoint: { oursMs: s(1, 2, 3), naiveRawMs: s(2, 3, 4), fairRawMs: s(1, 2, 2) },
          },
        },
      },
      policy: { exitCode: 1, seconds: 1, results: {} },
    },
  };
}

describe("render", () => {
  const doc = render(fixture(), "bench-results/benchmarks.json");

  it("states the machine the run was on", () => {
    for (const x of [
      "Test CPU @ 3.0GHz, 2 cores",
      "24.0 GiB",
      "6.1.0-test",
      "v20.20.2",
      "2026-12-07T00:00:00.000Z",
    ])
      expect(doc).toContain(x);
    expect(doc).toContain("| frr | not installed |");
  });

  it("words a row we lose as a loss, and no heading claims a win", () => {
    const load = doc.split("\n").find((l) => l.startsWith("| BGP: load 1,000,000 routes"));
    expect(load).toContain("BIRD: 0.33 (0.30–0.36)");
    expect(load).toContain("Margay 1.33× slower");
    const rss = doc.split("\n").find((l) => l.startsWith("| BGP: RSS per route, loaded"));
    expect(rss).toContain("Margay 1.50× less memory");
    for (const h of doc.split("\n").filter((l) => l.startsWith("#"))) expect(h).not.toMatch(/beat|faster/i);
  });

  it("states the pass count the wire run recorded, not a typed-in one", () => {
    expect(doc).toContain("**@margay/bgp wire path** (1,000 prefixes, 7 passes each, ms):");
  });

  it("states how many samples each dataplane figure has", () => {
    expect(doc).toContain("2 full syncs and 3 one-endpoint changes on each side.");
  });

  it("names failed packages and divides by no typed-in rate", () => {
    expect(doc).toContain("**Failed in this run** (no figures below): policy (exit 1).");
    expect(doc).not.toMatch(/Calico's calc graph is designed|1,000 \/s/);
  });
});

describe("docs/benchmarks.md", () => {
  it("is the rendering of the committed run, bench-results/benchmarks.json (no figure typed in or left over)", () => {
    const run = JSON.parse(readFileSync(join(repoRoot, "bench-results", "benchmarks.json"), "utf8")) as Run;
    const page = readFileSync(join(repoRoot, "docs", "benchmarks.md"), "utf8");
    expect(run.quick).toBe(false);
    const doc = render(run, "bench-results/benchmarks.json");
    // The Scale section, last, is the rendering of the committed scale run (scripts/render-scale.ts).
    const scale = loadScaleRun();
    expect(page).toBe(scale ? withScaleSection(doc, renderScale(scale, "bench-results/scale.json")) : doc);
  });
});

describe("render: the margay-node section", () => {
  const st = (median: number, p99: number) => ({ n: 50, min: median / 2, median, p99, max: p99 * 1.1 });
  const agent = {
    date: "2026-12-07T02:00:00.000Z",
    loadAverageAtStart: [20, 21, 22],
    loadAverageAtEnd: [23, 24, 25],
    hosts: 3,
    goals: { networkReadyP99Ms: 1_000, policyP99Ms: 500, rssMiB: 150 },
    networkReady: {
      pods: 50,
      readyMs: st(900, 1_200),
      addReplyMs: st(880, 1_190),
      stepsMs: { ipam: st(50, 90), plumb: st(700, 1_000) },
      afterReplyMs: st(-5, 10),
      remoteRouteMs: st(0, 0),
      remoteRoutePreinstalled: 50,
    },
    policy: { changes: 20, allHostsMs: st(250, 400), perHostMs: { host1: st(200, 390) } },
    bgp: {
      blocks: 20,
      fromAddMs: st(150, 300),
      fromReplyMs: st(-900, -100),
      routeProtocols: { "80": 40 },
      bgpPeerFromAddMs: st(400, 900),
      birdPollMs: st(90, 120),
    },
    scale: {
      endpoints: 10_000,
      localEndpoints: 250,
      policies: 1_000,
      fictitiousNodes: 39,
      inSyncSeconds: 12,
      cpuSecondsToInSync: 9,
      rssMiBSteady: 140,
      hwmMiB: 160,
      steadySeconds: 30,
      cpuPercentSteady: 1.5,
    },
  };
  const run = fixture();
  run.packages.margay = { exitCode: 0, seconds: 1, results: { agent } };
  const doc = render(run, "bench-results/benchmarks.json");

  it("says met or not met from the numbers, against each goal", () => {
    const line = (start: string) => doc.split("\n").find((l) => l.startsWith(start));
    expect(line("| network-ready p99 < 1,000 ms on 3 hosts")).toContain("1,200 ms | **not met**");
    expect(line("| policy change p99 < 500 ms")).toContain("400 ms | met");
    expect(line("| agent RSS < 150 MiB")).toContain("160.0 MiB | **not met**");
  });

  it("states its own run's load and names the quoted peers as not measured", () => {
    expect(doc).toContain("load average (1/5/15 min) 20.00 21.00 22.00");
    expect(doc).toContain("not measured here: no comparison with them is made");
    expect(doc).toContain("50 of 50 pods landed in a block allocated before");
  });
});

describe("render: the margay CNI plugin section", () => {
  const plugin = {
    cycles: 10,
    stats: {
      margay: s(280, 308, 400),
      ptp: s(90, 102, 130),
      agent: s(100, 120, 160),
      version: s(75, 82, 95),
      node: s(65, 69, 80),
      cycleFloor: s(130, 141, 170),
    },
    agentAddStepsMs: { ipam: 12.5, plumb: 60.25 },
    agentDelStepsMs: { endpoint: 3.25, veth: 20.5 },
    start: {
      node: s(66, 70, 90),
      minimal: s(75, 79.5, 95),
      codeCache: s(78, 83.2, 99),
      noCache: s(79, 84, 100),
      snapshot: s(110, 118, 130),
    },
    startCpuMsPerProcess: { node: 60, minimal: 68.5, codeCache: 66.25, noCache: 70, snapshot: 100 },
    burst: { n: 30, p50: 2_400, p99: 3_500, max: 3_500, wallMs: 3_600 },
    pods: { n: 100, workers: 10, wallMs: 12_300 },
    floors: {
      cycle: s(130, 141, 170),
      burst: { n: 30, p50: 1_800, p99: 2_100, max: 2_100, wallMs: 2_150 },
      pods: { n: 100, workers: 10, wallMs: 7_900 },
    },
    goals: { cycleOverPtp: 1.5, pluginStartOverNodeMs: 10, burstP99Ms: 1_000, podsWallMs: 10_000 },
    ratios: { cycleMargayOverPtp: 308 / 102, cycleFloorOverPtp: 141 / 102 },
  };
  const line = (doc: string, start: string) => doc.split("\n").find((l) => l.startsWith(start));
  const withPlugin = (p: object) => {
    const run = fixture();
    run.packages.margay = { exitCode: 0, seconds: 1, results: { "margay-cni-plugin": p } };
    return render(run, "bench-results/benchmarks.json");
  };
  const doc = withPlugin(plugin);

  it("compares ADD+DEL with ptp + host-local in words derived from the numbers, and claims no win", () => {
    expect(line(doc, "| CNI: ADD+DEL, margay + agent vs ptp + host-local")).toContain(
      "ptp + host-local: 102.0 (90.0–130.0) | 3.0 | Margay 3.02× slower",
    );
    expect(doc).toContain("## margay CNI plugin (with margay-node)");
    for (const h of doc.split("\n").filter((l) => l.startsWith("#"))) expect(h).not.toMatch(/beat|faster/i);
  });

  it("shows every figure with its floor from the JSON: ADD+DEL, start over node, burst, 100 pods, steps", () => {
    expect(line(doc, "| floor: 2 bare node starts")).toContain("141.0 (130.0–170.0)");
    expect(line(doc, "| shipped: the bundle with its V8 code cache")).toBe(
      "| shipped: the bundle with its V8 code cache | 83.2 (78.0–99.0) | 13.2 / 12.0 | 66.3 | 6.3 |",
    );
    expect(line(doc, "| a minimal `node:net` client")).toContain("| 9.5 / 9.0");
    expect(line(doc, "| concurrent margay ADDs")).toBe(
      "| concurrent margay ADDs | 30 | 2.40 | 3.50 | 3.50 | 3.60 |",
    );
    expect(line(doc, "| floor: bare node starts at once")).toBe(
      "| floor: bare node starts at once | 30 | 1.80 | 2.10 | 2.10 | 2.15 |",
    );
    expect(line(doc, "| floor: 100 bare node starts, 10 workers")).toContain("| 7.90 |");
    expect(doc).toContain("ms): ipam 12.5, plumb 60.3.");
    expect(doc).toContain("`margay_workload_del_seconds{step}`, ms): endpoint 3.3, veth 20.5.");
  });

  it("says met or not met against each goal, and whether its floor alone misses it", () => {
    expect(line(doc, "| ADD+DEL within 1.5× of ptp")).toBe(
      "| ADD+DEL within 1.5× of ptp + host-local (ratio of medians) | 3.02× | **not met** | 2 bare node starts: 1.38×, below the goal |",
    );
    expect(line(doc, "| plugin's own start < 10 ms")).toContain(
      "| 13.2 ms | **not met** | minimal node:net script: 9.5 ms, below the goal |",
    );
    expect(line(doc, "| same, in CPU time")).toContain(
      "| 6.3 ms | met | minimal node:net script: 8.5 ms, below the goal |",
    );
    expect(line(doc, "| 30 concurrent ADDs, p99 < 1.00 s")).toContain(
      "| 3.50 s | **not met** | 30 bare node starts at once: p99 2.10 s, **misses the goal by itself** |",
    );
    expect(line(doc, "| 100 pods networked within 10.00 s")).toContain(
      "| 12.30 s | **not met** | 100 bare node starts, 10 workers: 7.90 s, below the goal |",
    );
    const fast = withPlugin({ ...plugin, pods: { n: 100, workers: 10, wallMs: 9_000 } });
    expect(line(fast, "| 100 pods networked within 10.00 s")).toContain("| 9.00 s | met |");
  });

  it("renders a run recorded before the floors and start variants without inventing them", () => {
    const { floors: _f, start: _s, ...old } = plugin;
    const { cycleFloor: _c, ...stats } = plugin.stats;
    const d = withPlugin({ ...old, stats, ratios: { cycleMargayOverPtp: 308 / 102 } });
    expect(d).not.toContain("floor: 2 bare node starts");
    expect(d).not.toContain("floor: bare node starts at once");
    expect(line(d, "| ADD+DEL within 1.5× of ptp")).toContain("| not measured |");
    expect(d).not.toContain("plugin's own start < 10 ms");
    expect(d).not.toContain("same, in CPU time");
  });
});
