import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname as dir, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ensureDemoExecutables } from "./build.js";

describe("ensureDemoExecutables", () => {
  let root = "";
  let outDir = "";
  const calls: string[] = [];
  const builder = (name: string) => async (outfile: string) => {
    calls.push(name);
    await writeFile(outfile, `// ${name}\n`);
  };
  const builders = { "a.cjs": builder("a"), "b.cjs": builder("b") };
  const at = (path: string, seconds: number) => utimes(path, seconds, seconds);

  beforeEach(async () => {
    calls.length = 0;
    root = await mkdtemp(join(tmpdir(), "margay-demo-build-"));
    outDir = join(root, "packages", "margay", "dist", "bin");
    await mkdir(join(root, "packages", "api", "src", "deep"), { recursive: true });
    await mkdir(join(root, "node_modules"), { recursive: true });
    await mkdir(outDir, { recursive: true });
    await writeFile(join(root, "packages", "api", "src", "deep", "ip.ts"), "export {};\n");
    await writeFile(join(root, "packages", "api", "src", "ip.test.ts"), "export {};\n");
    await writeFile(join(root, "packages", "api", "package.json"), "{}\n");
    await writeFile(join(root, "node_modules", ".package-lock.json"), "{}\n");
    for (const f of [
      "packages/api/src/deep/ip.ts",
      "packages/api/package.json",
      "node_modules/.package-lock.json",
    ])
      await at(join(root, f), 1_000);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("builds every executable when one is missing, and writes no temp file", async () => {
    await writeFile(join(outDir, "a.cjs"), "old");
    const r = await ensureDemoExecutables({ root, outDir, builders });
    expect(r.built).toBe(true);
    expect(r.reason).toContain("missing");
    expect(calls.sort()).toEqual(["a", "b"]);
    expect((await readdir(outDir)).sort()).toEqual(["a.cjs", "b.cjs"]);
    expect(await readFile(join(outDir, "a.cjs"), "utf8")).toBe("// a\n");
  });

  it("does nothing when the bundles are newer than every source", async () => {
    for (const f of ["a.cjs", "b.cjs"]) {
      await writeFile(join(outDir, f), "built");
      await at(join(outDir, f), 2_000);
    }
    // A test file changed later is not an input of a bundle.
    await at(join(root, "packages", "api", "src", "ip.test.ts"), 3_000);
    const r = await ensureDemoExecutables({ root, outDir, builders });
    expect(r).toEqual({ built: false, reason: "the bundles are newer than every source" });
    expect(calls).toEqual([]);
  });

  it.each([
    ["a nested source", "packages/api/src/deep/ip.ts"],
    ["a package manifest", "packages/api/package.json"],
    ["the installed dependencies", "node_modules/.package-lock.json"],
  ])("rebuilds when %s is newer than a bundle", async (_what, file) => {
    for (const f of ["a.cjs", "b.cjs"]) {
      await writeFile(join(outDir, f), "built");
      await at(join(outDir, f), 2_000);
    }
    await at(join(outDir, "b.cjs"), 500);
    await at(join(root, file), 1_500);
    const r = await ensureDemoExecutables({ root, outDir, builders });
    expect(r.built).toBe(true);
    expect(r.reason).toBe(`${join(root, file)} is newer than the bundles`);
    expect(calls.sort()).toEqual(["a", "b"]);
  });

  it("leaves the old bundle in place when a build fails", async () => {
    await writeFile(join(outDir, "a.cjs"), "old");
    const failing = {
      "a.cjs": async (outfile: string) => {
        await writeFile(outfile, "half");
        throw new Error("esbuild failed");
      },
    };
    await expect(ensureDemoExecutables({ root, outDir, builders: failing, force: true })).rejects.toThrow(
      "esbuild failed",
    );
    expect(await readdir(outDir)).toEqual(["a.cjs"]);
    expect(await readFile(join(outDir, "a.cjs"), "utf8")).toBe("old");
  });
});

describe("tsconfig.demo.json (the demo runs from sources, with no library dist)", () => {
  it("maps every export of every workspace package to a source file that exists", () => {
    const tsconfigPath = fileURLToPath(new URL("./tsconfig.demo.json", import.meta.url));
    const packagesDir = fileURLToPath(new URL("../../../", import.meta.url));
    const paths = (
      JSON.parse(readFileSync(tsconfigPath, "utf8")) as {
        compilerOptions: { paths: Record<string, string[]> };
      }
    ).compilerOptions.paths;
    // TypeScript's rule: the longest matching prefix wins; `*` takes what is left.
    const resolve = (spec: string): string | undefined => {
      let best: { prefix: string; target: string; suffix: string } | undefined;
      for (const [pattern, [target]] of Object.entries(paths)) {
        const star = pattern.indexOf("*");
        const prefix = star < 0 ? pattern : pattern.slice(0, star);
        const suffix = star < 0 ? "" : pattern.slice(star + 1);
        const matches = star < 0 ? spec === pattern : spec.startsWith(prefix) && spec.endsWith(suffix);
        if (matches && (best === undefined || prefix.length > best.prefix.length))
          best = { prefix, target: target!, suffix: star < 0 ? "\0" : suffix };
      }
      if (best === undefined) return undefined;
      const middle =
        best.suffix === "\0" ? "" : spec.slice(best.prefix.length, spec.length - best.suffix.length);
      return join(dir(tsconfigPath), best.target.replace("*", middle));
    };
    const checked: string[] = [];
    for (const pkg of readdirSync(packagesDir)) {
      const manifest = join(packagesDir, pkg, "package.json");
      if (!existsSync(manifest)) continue;
      const { name, exports } = JSON.parse(readFileSync(manifest, "utf8")) as {
        name: string;
        exports?: Record<string, unknown>;
      };
      for (const sub of Object.keys(exports ?? {})) {
        if (sub === "./package.json") continue;
        const spec = sub === "." ? name : `${name}/${sub.slice(2)}`;
        const file = resolve(spec);
        expect(file, `${spec} is mapped`).toBeDefined();
        expect(existsSync(file!), `${spec} -> ${file}`).toBe(true);
        checked.push(spec);
      }
    }
    expect(checked).toContain("@margay/margay/testing");
    expect(checked).toContain("@margay/bgp/wire");
  });
});
