/**
 * The import lint: arrows between Margay's packages point down only (api at the bottom, margay at the top),
 * and every `@margay/*` import a package's source makes is declared in its package.json. See
 * docs/architecture.md for the picture this table encodes.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const packagesDir = fileURLToPath(new URL("../../../", import.meta.url));

/**
 * Packages whose published artefacts are bundles: what their sources import is bundled at build time, so it
 * is a devDependency (an install that only needs the binary does not pull etcd3 or gRPC).
 */
const bundled = new Set(["margay"]);

/** Which of our packages each package may import. A package missing here fails the test on purpose. */
const allowed: Record<string, readonly string[]> = {
  api: [],
  bgp: [],
  cni: [],
  "dataplane-contract": [],
  datastore: ["api"],
  ipam: ["api", "datastore"],
  policy: ["api", "dataplane-contract"],
  routing: ["api", "dataplane-contract"],
  dataplane: ["api", "dataplane-contract"],
  "kube-adapter": ["api", "datastore", "policy"],
  margay: [
    "api",
    "bgp",
    "cni",
    "dataplane-contract",
    "datastore",
    "dataplane",
    "ipam",
    "kube-adapter",
    "policy",
    "routing",
  ],
};

/**
 * Packages a package's tests and benchmarks (only) may import, as devDependencies: the dataplane's tests
 * drive the real calc graph and check verdicts with policy's reference evaluator, but the dataplane itself
 * depends only on the contract, so a vendor's driver never pulls the policy engine in.
 */
const testOnly: Record<string, readonly string[]> = {
  dataplane: ["policy"],
};

interface PackageJson {
  name: string;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    if (entry === "node_modules" || entry === "dist") continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|mts|cts)$/.test(entry)) out.push(path);
  }
  return out;
}

/**
 * Static imports and re-exports (whose `from` clause starts a line or follows `import`/`export` on it), and
 * dynamic `import()`/`require()`. Code inside template strings (a test writing a consumer project) does not
 * start a line with these, so it is not taken for an import of the test itself.
 */
const importPattern =
  /^\s*(?:(?:import|export)\b[^\n`]*?\bfrom|\}\s*from|import)\s*["']@margay\/([a-z-]+)|(?<![`$]\{?\s*)\b(?:import|require)\s*\(\s*["']@margay\/([a-z-]+)/gm;

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(importPattern)].map((m) => (m[1] ?? m[2]) as string);
}

const packages = readdirSync(packagesDir).filter((d) => {
  try {
    return statSync(join(packagesDir, d, "package.json")).isFile();
  } catch {
    return false;
  }
});

describe("package layering", () => {
  it("knows every package in packages/", () => {
    expect(packages.filter((p) => !(p in allowed))).toEqual([]);
  });

  for (const pkg of packages) {
    const dir = join(packagesDir, pkg);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as PackageJson;
    const runtime = new Set(Object.keys({ ...manifest.dependencies, ...manifest.peerDependencies }));
    const dev = new Set(Object.keys(manifest.devDependencies ?? {}));
    const may = new Set((allowed[pkg] ?? []).map((p) => `@margay/${p}`));
    const mayInTests = new Set((testOnly[pkg] ?? []).map((p) => `@margay/${p}`));

    it(`${pkg}: package.json declares only packages below it`, () => {
      const declared = [...runtime, ...dev].filter((d) => d.startsWith("@margay/"));
      expect(declared.filter((d) => !may.has(d) && !(mayInTests.has(d) && !runtime.has(d)))).toEqual([]);
    });

    it(`${pkg}: source imports only declared packages below it`, () => {
      const problems: string[] = [];
      for (const root of ["src", "bench"]) {
        let files: string[] = [];
        try {
          files = sourceFiles(join(dir, root));
        } catch {
          continue;
        }
        for (const file of files) {
          const isTestOnly = /\.test\.ts$|\/testing\/|\/__tests__\/|^bench\//.test(relative(dir, file));
          for (const target of importsOf(file)) {
            if (target === pkg) continue;
            const name = `@margay/${target}`;
            const where = relative(packagesDir, file);
            // Not the shipped `testing/` subpaths: what they import, their users install.
            const isTestOrBench = /\.test\.ts$|\/__tests__\/|^bench\//.test(relative(dir, file));
            if (isTestOrBench && mayInTests.has(name) && dev.has(name)) continue;
            if (!may.has(name)) problems.push(`${where} imports ${name}: an upward or sideways arrow`);
            else if (!runtime.has(name) && !((isTestOnly || bundled.has(pkg)) && dev.has(name)))
              problems.push(`${where} imports ${name}, which package.json does not declare`);
          }
        }
      }
      expect(problems).toEqual([]);
    });
  }
});
