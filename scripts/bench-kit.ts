/**
 * What every package benchmark shares: where results go, the quick switch, and min/median/max summaries.
 * `scripts/run-benchmarks.ts` (`npm run bench`) sets the environment; a bench run on its own writes to
 * `<repo>/bench-results/`.
 *
 *   BENCH_RESULTS_DIR  directory for this run's JSON files (default `<repo>/bench-results`)
 *   BENCH_QUICK=1      tiny sizes: proves a benchmark works, its figures mean nothing
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** True for a quick (tiny) run. */
export const quick = process.env.BENCH_QUICK === "1";

/** Picks the full or the quick size. */
export const size = <T>(full: T, tiny: T): T => (quick ? tiny : full);

/** min, median and max of a sample set, with the samples themselves. */
export interface Summary {
  readonly min: number;
  readonly median: number;
  readonly max: number;
  readonly n: number;
  readonly samples: readonly number[];
}

/** Summarises samples (the median of an even count is the mean of the middle two). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error("summarize: no samples");
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s[s.length - 1]!, n: s.length, samples: [...samples] };
}

/** Summarises one field of a list of runs. */
export const summarizeBy = <T>(runs: readonly T[], f: (r: T) => number): Summary => summarize(runs.map(f));

/** Formats a summary as `median (min–max)`, with `digits` decimals and thousands separators. */
export function fmt(s: Pick<Summary, "min" | "median" | "max">, digits = 1): string {
  const f = (x: number) =>
    x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
}

/** First line a tool prints about its version (stdout or stderr: BIRD uses stderr), or null when it is missing. */
export function toolVersion(cmd: string, args: readonly string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 10_000 });
  if (r.error) return null;
  const line = `${r.stdout ?? ""}\n${r.stderr ?? ""}`.split("\n").find((l) => l.trim() !== "");
  return line?.trim() ?? null;
}

/** The directory this run's JSON goes to. */
function resultsDir(): string {
  const dir = process.env.BENCH_RESULTS_DIR ?? join(repoRoot, "bench-results");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Writes `<resultsDir>/<name>.json` with `quick` and `date` added; returns the path. */
export function writeResult(name: string, data: object): string {
  const file = join(resultsDir(), `${name}.json`);
  writeFileSync(
    file,
    `${JSON.stringify({ name, quick, date: new Date().toISOString(), ...data }, null, 2)}\n`,
  );
  console.log(`wrote ${file}`);
  return file;
}
