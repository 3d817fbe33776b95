/**
 * `npm run bench:scale`: the growth curves. Every workspace package with a `bench/scale.ts` is a scale
 * benchmark; each runs in its own process (`node --expose-gc --import tsx`, so a benchmark may force a
 * GC before it reads the heap) and prints one JSON line per curve (see scripts/scale-kit.ts). The
 * curves of one run go to ONE file, `bench-results/scale.json`, with the machine they were measured on;
 * `scripts/render-scale.ts` turns it into the "Scale" section of `docs/benchmarks.md`.
 *
 *   npm run bench:scale -- [--quick] [--only ipam,datastore] [--out bench-results/scale.json]
 *                          [--no-build] [--render] [--bench-args "ipam:--max 296000 --runs 3"]
 *
 * `--bench-args "<pkg>:<args>"` (repeatable) hands arguments to one package's benchmark.
 *
 * A package adds its curves by adding `bench/scale.ts`; nothing here names it. The packages measured
 * (and their dependencies) are built first: benchmarks import their siblings from `dist`.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { repoRoot } from "./bench-kit.js";
import { type Curve, isCurve } from "./scale-kit.js";

/** What `bench-results/scale.json` holds. */
export interface ScaleRun {
  kind: "margay-scale";
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  machine: {
    cpuModel: string;
    cores: number;
    memoryBytes: number;
    kernel: string;
    node: string;
    loadAverageAtStart: number[];
    loadAverageAtEnd: number[];
  };
  packages: Record<string, { exitCode: number; seconds: number; curves: Curve[] }>;
}

/** Workspace packages (`packages/<name>`) that have a `bench/scale.ts`, in workspace order. */
export function scalePackages(root = repoRoot): string[] {
  const ws = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { workspaces: string[] })
    .workspaces;
  return ws
    .filter((w) => existsSync(join(root, w, "bench", "scale.ts")))
    .map((w) => w.replace(/^packages\//, ""));
}

/** The curve lines among a benchmark's stdout lines (every other line is ignored). */
export function parseCurves(stdout: string): Curve[] {
  const out: Curve[] = [];
  for (const line of stdout.split("\n")) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      const v: unknown = JSON.parse(t);
      if (isCurve(v)) out.push(v);
    } catch {
      // Not JSON: a line for people.
    }
  }
  return out;
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function cpuModel(): string {
  try {
    const m = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim();
    if (m) return m;
  } catch {
    // No /proc: fall through.
  }
  return cpus()[0]?.model ?? "unknown";
}

/** Arguments for `pkg`'s benchmark from every `--bench-args "<pkg>:<args>"`. */
export function benchArgs(pkg: string, argv: readonly string[] = process.argv): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    const v = argv[i + 1];
    if (a === "--bench-args" && v?.startsWith(`${pkg}:`))
      out.push(
        ...v
          .slice(pkg.length + 1)
          .split(/\s+/)
          .filter(Boolean),
      );
  });
  return out;
}

async function runOne(
  pkg: string,
  quick: boolean,
): Promise<{ exitCode: number; seconds: number; curves: Curve[] }> {
  const t0 = Date.now();
  const child = spawn(
    process.execPath,
    ["--expose-gc", "--import", "tsx", join("packages", pkg, "bench", "scale.ts"), ...benchArgs(pkg)],
    {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...(quick ? { BENCH_QUICK: "1" } : {}) },
    },
  );
  let stdout = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (d: string) => {
    stdout += d;
  });
  const exitCode = await new Promise<number>((res) => {
    child.on("error", () => res(127));
    child.on("exit", (code) => res(code ?? 1));
  });
  return { exitCode, seconds: (Date.now() - t0) / 1000, curves: parseCurves(stdout) };
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const all = scalePackages();
  const only = arg("only")?.split(",") ?? all;
  const pkgs = all.filter((p) => only.includes(p));
  const out = resolve(
    repoRoot,
    arg("out") ?? join("bench-results", quick ? "scale-quick.json" : "scale.json"),
  );
  if (!process.argv.includes("--no-build")) {
    process.stderr.write("== build ==\n");
    const scopes = pkgs.flatMap((p) => ["--scope", `@margay/${p}`]);
    const b = spawnSync("npx", ["lerna", "run", "build", ...scopes, "--include-dependencies"], {
      cwd: repoRoot,
      stdio: "inherit",
    });
    if (b.status !== 0) throw new Error(`build failed (exit ${b.status})`);
  }
  const run: ScaleRun = {
    kind: "margay-scale",
    quick,
    startedAt: new Date().toISOString(),
    finishedAt: "",
    machine: {
      cpuModel: cpuModel(),
      cores: cpus().length,
      memoryBytes: totalmem(),
      kernel: release(),
      node: process.version,
      loadAverageAtStart: loadavg(),
      loadAverageAtEnd: [],
    },
    packages: {},
  };
  for (const pkg of pkgs) {
    process.stderr.write(`\n== ${pkg} ==\n`);
    run.packages[pkg] = await runOne(pkg, quick);
  }
  run.finishedAt = new Date().toISOString();
  run.machine.loadAverageAtEnd = loadavg();
  mkdirSync(join(repoRoot, "bench-results"), { recursive: true });
  writeFileSync(out, `${JSON.stringify(run, null, 2)}\n`);
  console.log(`wrote ${out}`);
  const failed = Object.entries(run.packages).filter(([, p]) => p.exitCode !== 0);
  if (failed.length > 0) {
    console.error(`failed: ${failed.map(([k, p]) => `${k} (exit ${p.exitCode})`).join(", ")}`);
    process.exitCode = 1;
  }
  if (process.argv.includes("--render")) {
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        join("scripts", "render-scale.ts"),
        "--in",
        out,
        ...(quick ? ["--allow-quick"] : []),
      ],
      {
        cwd: repoRoot,
        stdio: "inherit",
      },
    );
    if (r.status !== 0) process.exitCode = 1;
  }
}

// Run only as a script, so a test can import the helpers.
if (process.argv[1] && resolve(process.argv[1]) === resolve(repoRoot, "scripts", "bench-scale.ts"))
  await main();
