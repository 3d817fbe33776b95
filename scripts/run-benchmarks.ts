/**
 * `npm run bench`: runs every package's benchmark one after another into one run directory, then
 * writes ONE file, `bench-results/benchmarks.json`, holding the machine, the tool versions and every
 * package's results. `scripts/render-benchmarks.ts` turns that file into `docs/benchmarks.md`, so the
 * document never mixes figures of different runs.
 *
 *   npm run bench -- [--quick] [--only bgp,policy] [--out bench-results/benchmarks.json] [--no-build]
 *
 * `--quick` runs tiny sizes (proves the benchmarks work; the renderer refuses such a file). The packages
 * are built first (`lerna run build`): benchmarks import their siblings from `dist`, the code users run.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, freemem, loadavg, release, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { repoRoot, toolVersion as version } from "./bench-kit.js";

/** Run first, in this order; any other workspace with a `bench` script follows; the CNI plugin last. */
const ORDER = ["datastore", "ipam", "bgp", "policy", "dataplane", "kube-adapter"];

/** Workspace directories (`packages/<name>`) whose package.json has a `bench` script. */
function benchPackages(): string[] {
  const root = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as { workspaces: string[] };
  const found = root.workspaces
    .filter((w) => {
      const pkg = JSON.parse(readFileSync(join(repoRoot, w, "package.json"), "utf8")) as {
        scripts?: Record<string, string>;
      };
      return pkg.scripts?.bench !== undefined;
    })
    .map((w) => w.replace(/^packages\//, ""));
  const rank = (p: string) =>
    p === "margay" ? ORDER.length + 1 : ORDER.includes(p) ? ORDER.indexOf(p) : ORDER.length;
  return found.sort((a, b) => rank(a) - rank(b));
}
const PACKAGES = benchPackages();

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const QUICK = process.argv.includes("--quick");
const ONLY = arg("only")?.split(",") ?? PACKAGES;
const OUT = resolve(
  repoRoot,
  arg("out") ?? join("bench-results", QUICK ? "benchmarks-quick.json" : "benchmarks.json"),
);

function machine() {
  const cpuinfo = (() => {
    try {
      return readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return "";
    }
  })();
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? cpus()[0]?.model ?? "unknown";
  return {
    cpuModel: model,
    cores: cpus().length,
    memoryBytes: totalmem(),
    freeMemoryBytesAtStart: freemem(),
    kernel: release(),
    node: process.version,
    loadAverageAtStart: loadavg(),
  };
}

function tools() {
  return {
    etcd: version("etcd", ["--version"]),
    bird: version("/usr/sbin/bird", ["--version"]),
    gobgpd: version("/usr/bin/gobgpd", ["--version"]),
    frr: version("/usr/lib/frr/bgpd", ["--version"]),
    iproute2: version("ip", ["-V"]),
    nft: version("nft", ["--version"]),
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format string, not a template
    cniPlugins: version("dpkg-query", ["-W", "-f", "${Version}", "containernetworking-plugins"]),
  };
}

async function runBench(pkg: string, dir: string): Promise<{ exitCode: number; seconds: number }> {
  const t0 = Date.now();
  const child = spawn("npm", ["run", "bench", "-w", `packages/${pkg}`], {
    cwd: repoRoot,
    stdio: "inherit",
    env: { ...process.env, BENCH_RESULTS_DIR: dir, ...(QUICK ? { BENCH_QUICK: "1" } : {}) },
  });
  const exitCode = await new Promise<number>((res) => child.on("exit", (code) => res(code ?? 1)));
  return { exitCode, seconds: (Date.now() - t0) / 1000 };
}

async function main() {
  if (!process.argv.includes("--no-build")) {
    process.stderr.write("== build ==\n");
    const b = spawnSync("npx", ["lerna", "run", "build"], { cwd: repoRoot, stdio: "inherit" });
    if (b.status !== 0) throw new Error(`build failed (exit ${b.status})`);
  }
  const startedAt = new Date().toISOString();
  const m = machine();
  mkdirSync(join(repoRoot, "bench-results"), { recursive: true });
  const dir = mkdtempSync(join(repoRoot, "bench-results", ".run-"));
  const packages: Record<string, { exitCode: number; seconds: number; results: Record<string, unknown> }> =
    {};
  try {
    for (const pkg of PACKAGES) {
      if (!ONLY.includes(pkg)) continue;
      process.stderr.write(`\n== ${pkg} ==\n`);
      const before = new Set(readdirSync(dir));
      const r = await runBench(pkg, dir);
      const results: Record<string, unknown> = {};
      for (const f of readdirSync(dir)) {
        if (before.has(f) || !f.endsWith(".json")) continue;
        results[f.replace(/\.json$/, "")] = JSON.parse(readFileSync(join(dir, f), "utf8"));
      }
      packages[pkg] = { ...r, results };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const out = {
    kind: "margay-benchmarks",
    quick: QUICK,
    startedAt,
    finishedAt: new Date().toISOString(),
    machine: { ...m, loadAverageAtEnd: loadavg() },
    tools: tools(),
    packages,
  };
  writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${OUT}`);
  const failed = Object.entries(packages).filter(([, p]) => p.exitCode !== 0);
  if (failed.length > 0) {
    console.error(`failed: ${failed.map(([k, p]) => `${k} (exit ${p.exitCode})`).join(", ")}`);
    process.exitCode = 1;
  }
}

await main();
