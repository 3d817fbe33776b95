/**
 * What every package's scale benchmark (`packages/<pkg>/bench/scale.ts`) shares: a growth curve is a
 * list of points (x: the size, e.g. addresses in use), each measured in several runs and summarised as
 * min/median/max, plus the least-squares slope of log(median y) over log(x). A slope of 0 is flat (the
 * cost does not grow with the size), 1 is linear, 2 quadratic.
 *
 * A scale benchmark prints ONE JSON line per curve on stdout (see {@link emitCurve}) and anything for
 * people on stderr; `scripts/bench-scale.ts` (`npm run bench:scale`) discovers every package's
 * `bench/scale.ts`, runs it, collects those lines into `bench-results/scale.json`, and
 * `scripts/render-scale.ts` turns that file into the "Scale" section of `docs/benchmarks.md`.
 */
import { type Summary, summarize } from "./bench-kit.js";

/** Marks a stdout line as a curve (the runner ignores every other line). */
export const CURVE_KIND = "margay-scale-curve";

/** One point of a curve: the size and the runs measured at it. */
export interface CurvePoint extends Summary {
  /** The size (the x axis). */
  readonly x: number;
}

/** One growth curve, as a scale benchmark prints it. */
export interface Curve {
  readonly kind: typeof CURVE_KIND;
  /** The package measured (`ipam`, `datastore`, ...). */
  readonly package: string;
  /** Short, stable name of the curve, e.g. `allocate-vs-in-use`. */
  readonly name: string;
  /** What the curve shows, in words. */
  readonly title: string;
  /** The x axis, e.g. `addresses in use`. */
  readonly x: string;
  /** The y axis with its unit, e.g. `µs per allocation`. */
  readonly y: string;
  /** The slope the path should have: 0 (flat in the size) or 1 (linear). */
  readonly expectedSlope: 0 | 1;
  /** The goal in words (from the issue that asked for the curve), if any. */
  readonly goal?: string | undefined;
  /** The points, by increasing x. */
  readonly points: readonly CurvePoint[];
  /** Fitted log-log slope over the points' medians (NaN with fewer than two usable points). */
  readonly slope: number;
  /** Median y at the largest x over median y at the smallest. */
  readonly growth: number;
  /** How each run was made (sizes, repeats, what a sample is). */
  readonly method: string;
  /** Runs that gave no sample, and why (e.g. a point that ran out of memory). */
  readonly failures?: readonly string[] | undefined;
  /**
   * The `name` of this curve's floor: another curve of the same package, measured in the same runs at
   * the same sizes the same way, of a part of this cost that the path pays outside the code measured
   * (e.g. the kernel's own work for the change this design writes) or that a minimal implementation of
   * the same work pays; the floor's title says which. The report then also fits the slope of what this
   * curve costs above its floor, point by point (median minus the floor's median): a path that grows
   * only as fast as its floor grows is explained by a measurement, not by words.
   */
  readonly floor?: string | undefined;
}

/** The part of `c` above its floor `f`: per common x, c's median minus f's, and the slope of those. */
export interface AboveFloor {
  readonly points: readonly { readonly x: number; readonly y: number }[];
  /**
   * Log-log slope of the differences; NaN when fewer than two points are in common, or when some
   * difference is not above zero (a slope fitted to the remaining points would say nothing of them).
   */
  readonly slope: number;
  /** Difference at the largest x over the difference at the smallest (NaN unless both are above zero). */
  readonly growth: number;
}

/** What `c` costs above its floor `f` at the sizes both measured (see {@link Curve.floor}). */
export function aboveFloor(c: Pick<Curve, "points">, f: Pick<Curve, "points">): AboveFloor {
  const floorAt = new Map(f.points.map((p) => [p.x, p.median]));
  const points = c.points
    .filter((p) => floorAt.has(p.x))
    .map((p) => ({ x: p.x, y: p.median - floorAt.get(p.x)! }));
  const first = points[0]?.y ?? 0;
  const last = points.at(-1)?.y ?? 0;
  return {
    points,
    slope: points.every((p) => p.y > 0) ? logLogSlope(points) : Number.NaN,
    growth: first > 0 && last > 0 ? last / first : Number.NaN,
  };
}

/**
 * Least-squares slope of log(y) over log(x): the exponent k of y ~ x^k. Points with x or y not above
 * zero are left out (no logarithm).
 */
export function logLogSlope(points: readonly { x: number; y: number }[]): number {
  const p = points.filter((q) => q.x > 0 && q.y > 0).map((q) => ({ lx: Math.log(q.x), ly: Math.log(q.y) }));
  if (p.length < 2) return Number.NaN;
  const mx = p.reduce((s, q) => s + q.lx, 0) / p.length;
  const my = p.reduce((s, q) => s + q.ly, 0) / p.length;
  let num = 0;
  let den = 0;
  for (const q of p) {
    num += (q.lx - mx) * (q.ly - my);
    den += (q.lx - mx) ** 2;
  }
  return den === 0 ? Number.NaN : num / den;
}

/** Builds a curve from the samples measured at each x (`samples.get(x)`: one value per run). */
export function makeCurve(
  meta: Omit<Curve, "kind" | "points" | "slope" | "growth">,
  samples: ReadonlyMap<number, readonly number[]>,
): Curve {
  const points: CurvePoint[] = [...samples.entries()]
    .filter(([, ys]) => ys.length > 0)
    .sort(([a], [b]) => a - b)
    .map(([x, ys]) => ({ x, ...summarize(ys) }));
  const slope = logLogSlope(points.map((p) => ({ x: p.x, y: p.median })));
  const first = points[0];
  const last = points.at(-1);
  const growth = first && last && first.median > 0 ? last.median / first.median : Number.NaN;
  return { kind: CURVE_KIND, ...meta, points, slope, growth };
}

/** True for an object that is a curve line. */
export function isCurve(v: unknown): v is Curve {
  return typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === CURVE_KIND;
}

const n = (x: number, d = 0) =>
  x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });

/** Prints the curve for people (stderr) and as one JSON line for the runner (stdout). */
export function emitCurve(c: Curve): void {
  const lines = [
    `${c.package}: ${c.title}`,
    `  ${c.x.padStart(20)} | ${c.y} median (min–max) of ${c.points[0]?.n ?? 0} runs`,
    ...c.points.map((p) => `  ${n(p.x).padStart(20)} | ${n(p.median, 2)} (${n(p.min, 2)}–${n(p.max, 2)})`),
    `  log-log slope ${Number.isFinite(c.slope) ? c.slope.toFixed(2) : "—"} (expected ${c.expectedSlope}), growth ${Number.isFinite(c.growth) ? c.growth.toFixed(2) : "—"}x`,
    ...(c.failures ?? []).map((f) => `  failed: ${f}`),
  ];
  process.stderr.write(`${lines.join("\n")}\n`);
  process.stdout.write(`${JSON.stringify(c)}\n`);
}

/** Reads `--name value` from argv, or `fallback`. */
export function argValue(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** CPU time (user + system) this process has used, in µs: unlike wall time, barely moved by other load. */
export function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/** Runs the garbage collector when the process was started with `--expose-gc` (else does nothing). */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
