import { describe, expect, it } from "vitest";
import { benchArgs, parseCurves, type ScaleRun, scalePackages } from "./bench-scale.js";
import { floorVerdict, renderScale, SCALE_HEADING, slopeVerdict, withScaleSection } from "./render-scale.js";
import { aboveFloor, type Curve, logLogSlope, makeCurve } from "./scale-kit.js";

const meta = {
  package: "ipam",
  name: "allocate-vs-in-use",
  title: "autoAssign latency vs addresses in use",
  x: "addresses in use",
  y: "µs per allocation",
  expectedSlope: 0 as const,
  goal: "flat",
  method: "3 runs",
};

/** A run of the given packages on a test machine. */
function scaleRun(packages: ScaleRun["packages"]): ScaleRun {
  return {
    kind: "margay-scale",
    quick: false,
    startedAt: "2026-12-07T00:00:00.000Z",
    finishedAt: "2026-12-07T00:10:00.000Z",
    machine: {
      cpuModel: "Test CPU",
      cores: 2,
      memoryBytes: 1,
      kernel: "k",
      node: "v20",
      loadAverageAtStart: [1, 2, 3],
      loadAverageAtEnd: [1, 2, 3],
    },
    packages,
  };
}

describe("logLogSlope", () => {
  it("gives the exponent of a power law: 0 flat, 1 linear, 2 quadratic", () => {
    const xs = [10, 100, 1000, 10_000];
    for (const k of [0, 1, 2, 0.5])
      expect(logLogSlope(xs.map((x) => ({ x, y: 3 * x ** k })))).toBeCloseTo(k, 10);
  });
  it("leaves out points without a logarithm and needs two points", () => {
    expect(
      logLogSlope([
        { x: 0, y: 5 },
        { x: 10, y: 10 },
        { x: 100, y: 100 },
      ]),
    ).toBeCloseTo(1, 10);
    expect(logLogSlope([{ x: 10, y: 1 }])).toBeNaN();
  });
});

describe("makeCurve", () => {
  it("summarises each point's runs (median of 3) in x order, with slope and growth of the medians", () => {
    const c = makeCurve(
      meta,
      new Map([
        [1000, [30, 10, 20]],
        [10, [1, 3, 2]],
      ]),
    );
    expect(c.points.map((p) => [p.x, p.min, p.median, p.max, p.n])).toEqual([
      [10, 1, 2, 3, 3],
      [1000, 10, 20, 30, 3],
    ]);
    expect(c.slope).toBeCloseTo(0.5, 10);
    expect(c.growth).toBe(10);
  });
});

describe("the runner", () => {
  it("takes only curve lines from a benchmark's stdout", () => {
    const c = makeCurve(
      meta,
      new Map([
        [1, [1]],
        [10, [2]],
      ]),
    );
    const out = ["wrote x.json", "{not json", JSON.stringify({ kind: "other" }), JSON.stringify(c), ""].join(
      "\n",
    );
    expect(parseCurves(out)).toEqual([c]);
  });
  it("hands each package only its own --bench-args", () => {
    const argv = ["node", "x", "--bench-args", "ipam:--max 5 --runs 1", "--bench-args", "datastore:--runs 2"];
    expect(benchArgs("ipam", argv)).toEqual(["--max", "5", "--runs", "1"]);
    expect(benchArgs("datastore", argv)).toEqual(["--runs", "2"]);
    expect(benchArgs("bgp", argv)).toEqual([]);
  });
  it("discovers every workspace package with a bench/scale.ts", () => {
    expect(scalePackages()).toEqual(expect.arrayContaining(["ipam", "datastore"]));
  });
});

describe("slopeVerdict", () => {
  it("derives the words from the slope and what the path should be", () => {
    expect(slopeVerdict({ slope: 0.05, expectedSlope: 0 })).toBe("flat");
    expect(slopeVerdict({ slope: 0.4, expectedSlope: 0 })).toBe("grows (x^0.40) where it should be flat");
    expect(slopeVerdict({ slope: 1.1, expectedSlope: 1 })).toBe("linear");
    expect(slopeVerdict({ slope: 1.5, expectedSlope: 1 })).toBe("super-linear (x^1.50): to fix or explain");
    expect(slopeVerdict({ slope: Number.NaN, expectedSlope: 1 })).toBe("too few points");
  });
});

describe("the Scale section", () => {
  const curve: Curve = makeCurve(
    meta,
    new Map([
      [10_000, [100, 110, 120]],
      [1_000_000, [115, 121, 130]],
    ]),
  );
  const run = scaleRun({
    ipam: { exitCode: 0, seconds: 1, curves: [curve] },
    bgp: { exitCode: 2, seconds: 1, curves: [] },
  });
  const section = renderScale(run, "bench-results/scale.json");

  it("states every point, the slope, the growth and the verdict, from the file", () => {
    expect(section.startsWith(`${SCALE_HEADING}\n`)).toBe(true);
    expect(section).toContain("| 10,000 | 110 (100–120) | 3 |");
    expect(section).toContain("| 1,000,000 | 121 (115–130) | 3 |");
    expect(section).toContain(`| ${curve.slope.toFixed(2)} | flat | flat |`);
    expect(section).toContain("| 1.10× |");
    expect(section).toContain("**Failed in this run**: bgp (exit 2).");
  });

  it("is appended to a document without one, and replaces the old one (everything from its heading on)", () => {
    const doc = "# Benchmarks\n\ntext\n";
    const once = withScaleSection(doc, section);
    expect(once).toBe(`${doc}\n${section}`);
    expect(withScaleSection(once, "## Scale: growth curves\n\nnew\n")).toBe(
      `${doc}\n## Scale: growth curves\n\nnew\n`,
    );
  });
});

describe("a curve with a floor", () => {
  const floorMeta = { ...meta, name: "kernel-floor", title: "the kernel's own work", goal: undefined };
  const withFloor = { ...meta, floor: "kernel-floor" };
  /** A curve with the same median (three equal runs) at 100, 1,000 and 3,000. */
  const at3 = (m: Parameters<typeof makeCurve>[0], a: number, b: number, c: number) =>
    makeCurve(
      m,
      new Map([
        [100, [a, a, a]],
        [1000, [b, b, b]],
        [3000, [c, c, c]],
      ]),
    );
  const floor = at3(floorMeta, 1, 2, 4);
  const grows = at3(withFloor, 1.5, 2.5, 4.5);
  const curves = [grows, floor];

  it("fits the slope of what the curve costs above its floor, point by point", () => {
    const a = aboveFloor(grows, floor);
    expect(a.points).toEqual([
      { x: 100, y: 0.5 },
      { x: 1000, y: 0.5 },
      { x: 3000, y: 0.5 },
    ]);
    expect(a.slope).toBeCloseTo(0, 10);
    expect(grows.slope).toBeGreaterThan(0.1);
  });

  it("says the growth is the floor's when the part above it is flat, and when it is not", () => {
    expect(slopeVerdict(grows)).toMatch(/where it should be flat/);
    expect(floorVerdict(grows, curves)).toBe("above its floor: flat (slope 0.00, growth 1.00×)");
    const worse = at3(withFloor, 2, 12, 34);
    expect(floorVerdict(worse, [worse, floor])).toMatch(
      /^above its floor: grows \(x\^\d\.\d\d\) where it should be flat/,
    );
    expect(floorVerdict(floor, curves)).toBe(
      "the floor of `allocate-vs-in-use` (its title says what it stands for)",
    );
    expect(floorVerdict(floor, [floor])).toBeUndefined();
    expect(floorVerdict({ ...grows, floor: "gone" }, [grows])).toBe(
      "its floor `gone` is missing from this run",
    );
    const under = at3(withFloor, 1, 2, 3);
    expect(floorVerdict(under, [under, floor])).toBe("no cost above its floor");
    // Mixed signs: no slope fitted to the points that happen to be above the floor.
    const mixed = at3(withFloor, 0.5, 3, 8);
    expect(aboveFloor(mixed, floor).slope).toBeNaN();
    expect(floorVerdict(mixed, [mixed, floor])).toBe(
      "above its floor: no slope (at some sizes it is not above its floor)",
    );
  });

  it("renders the verdict in the table and the per-point difference in the curve's section", () => {
    const run = scaleRun({ ipam: { exitCode: 0, seconds: 1, curves } });
    const s = renderScale(run, "x.json");
    expect(s).toContain("where it should be flat; above its floor: flat (slope 0.00, growth 1.00×) |");
    expect(s).toContain('Floor: "the kernel\'s own work" (`kernel-floor`, same runs, same sizes)');
    expect(s).toContain("| 3,000 | 4.50 (4.50–4.50) | 3 | 0.50 |");
  });
});
