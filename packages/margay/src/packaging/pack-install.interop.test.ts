import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { builtinModules } from "node:module";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// What an npm user gets: every workspace package packed with `npm pack` from its built `dist` (run
// `npm run build` first), installed from the tarballs into a fresh project outside the workspace
// (third-party dependencies come from the registry or npm's cache), then imported as ESM and as CJS
// and type-checked as a consumer would (nodenext, node16 CommonJS, bundler), with skipLibCheck off.

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");

interface Manifest {
  name: string;
  version: string;
  workspaces?: string[];
  exports?: Record<string, unknown>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment minus what an enclosing `npm run`/`npm test` sets, so each npm call stands alone. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && k !== "INIT_CWD" && k !== "NODE_OPTIONS") env[k] = v;
  }
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], cwd: string, input?: string, env = cleanEnv()): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

async function ok(cmd: string, args: string[], cwd: string, input?: string, env?: NodeJS.ProcessEnv) {
  const r = await run(cmd, args, cwd, input, env);
  if (r.code !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  }
  return r.stdout;
}

const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, "utf8")) as T;

/** Markdown link targets that are neither absolute URLs nor in-page anchors. */
function relativeLinks(markdown: string): string[] {
  return [...markdown.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
    .map((m) => m[1]!)
    .filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith("#"))
    .map((t) => posix.normalize(t.split("#")[0]!));
}

async function filesUnder(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === "" ? e.name : `${prefix}/${e.name}`;
    if (e.isDirectory()) out.push(...(await filesUnder(join(dir, e.name), rel)));
    else out.push(rel);
  }
  return out;
}

const root = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as Manifest;
const workspaces = root.workspaces ?? [];
const manifests = await Promise.all(
  workspaces.map((dir) => readJson<Manifest>(join(ROOT, dir, "package.json"))),
);
/** Every public entry point, e.g. `@margay/bgp/rib`. */
const entries = manifests.flatMap((m) =>
  Object.entries(m.exports ?? {})
    .filter(([, target]) => typeof target === "object")
    .map(([k]) => k)
    .map((k) => (k === "." ? m.name : `${m.name}${k.slice(1)}`)),
);

/** `@margay/bgp/rib` -> `@margay/bgp`. */
const entryPackage = (entry: string) => entry.split("/").slice(0, 2).join("/");

/** The consumer's own dependencies, at the versions the workspace tests with. */
async function workspaceVersion(name: string): Promise<string> {
  return (await readJson<Manifest>(join(ROOT, "node_modules", name, "package.json"))).version;
}

let tmp: string;
let tarballs: Map<string, string>;
let consumer: string;

beforeAll(async () => {
  for (const dir of workspaces) {
    if (!existsSync(join(ROOT, dir, "dist"))) {
      throw new Error(`${dir}/dist is missing: run \`npm run build\` before this test`);
    }
  }
  tmp = await mkdtemp(join(tmpdir(), "margay-pack-"));
  const packDir = join(tmp, "tarballs");
  await mkdir(packDir);
  const packed = JSON.parse(
    await ok(
      "npm",
      ["pack", "--workspaces", "--json", "--ignore-scripts", "--pack-destination", packDir],
      ROOT,
    ),
  ) as { name: string; filename: string }[];
  tarballs = new Map(packed.map((p) => [p.name, join(packDir, p.filename)]));

  consumer = join(tmp, "consumer");
  await mkdir(consumer);
  const margayDeps = Object.fromEntries([...tarballs].map(([name, file]) => [name, `file:${file}`]));
  await writeFile(
    join(consumer, "package.json"),
    JSON.stringify({
      name: "margay-consumer",
      version: "0.0.0",
      private: true,
      type: "module",
      dependencies: {
        ...margayDeps,
        // Optional peer of the `testing` entries that hold conformance suites.
        vitest: await workspaceVersion("vitest"),
      },
      devDependencies: { "@types/node": await workspaceVersion("@types/node") },
      // The tarballs' own dependencies on each other resolve to the same tarballs, never the registry.
      overrides: Object.fromEntries([...tarballs.keys()].map((name) => [name, `$${name}`])),
    }),
  );
  await ok("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"], consumer);
}, 600_000);

afterAll(async () => {
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
});

describe("npm pack + install of every package", () => {
  it("packs every workspace package", () => {
    expect([...tarballs.keys()].sort()).toEqual(manifests.map((m) => m.name).sort());
  });

  it("each tarball holds its LICENSE (the root's), README and only documents its README links resolve", async () => {
    const licence = await readFile(join(ROOT, "LICENSE"), "utf8");
    for (const m of manifests) {
      const dir = join(consumer, "node_modules", m.name);
      const files = new Set(await filesUnder(dir));
      expect(await readFile(join(dir, "LICENSE"), "utf8")).toBe(licence);
      const readme = await readFile(join(dir, "README.md"), "utf8");
      const missing = relativeLinks(readme).filter((t) => !files.has(t));
      expect({ package: m.name, missing }).toEqual({ package: m.name, missing: [] });
    }
  });

  it("every package its shipped code or types import is a declared dependency", async () => {
    const builtins = new Set(builtinModules);
    for (const m of manifests) {
      const dir = join(consumer, "node_modules", m.name);
      const declared = new Set([
        m.name,
        ...Object.keys(m.dependencies ?? {}),
        ...Object.keys(m.peerDependencies ?? {}),
      ]);
      const undeclared = new Set<string>();
      const shipped = (await filesUnder(dir)).filter((f) => /\.(c?js|d\.c?ts)$/.test(f));
      for (const f of shipped) {
        const code = await readFile(join(dir, f), "utf8");
        const specifiers = [
          ...code.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/gm),
          ...code.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm),
          ...code.matchAll(/\b(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)/g),
        ].map((x) => x[1]!);
        for (const spec of specifiers) {
          if (spec.startsWith(".") || spec.startsWith("node:") || builtins.has(spec)) continue;
          const name = spec
            .split("/")
            .slice(0, spec.startsWith("@") ? 2 : 1)
            .join("/");
          if (!declared.has(name)) undeclared.add(`${name} (${f})`);
        }
      }
      expect({ package: m.name, undeclared: [...undeclared] }).toEqual({ package: m.name, undeclared: [] });
    }
  });

  it("source maps carry no sourcesContent", async () => {
    for (const m of manifests) {
      const dir = join(consumer, "node_modules", m.name);
      const maps = (await filesUnder(dir)).filter((f) => f.endsWith(".map"));
      for (const f of maps) {
        const map = await readJson<{ sourcesContent?: unknown }>(join(dir, f));
        expect({ map: `${m.name}/${f}`, sourcesContent: map.sourcesContent }).toEqual({
          map: `${m.name}/${f}`,
          sourcesContent: undefined,
        });
      }
    }
  });

  it("every entry point loads as ESM and as CJS, with the same exports", async () => {
    const list = JSON.stringify(entries);
    const esm = await ok(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const out = {}; for (const e of ${list}) out[e] = Object.keys(await import(e)).filter((k) => k !== "default" && k !== "module.exports").sort(); console.log(JSON.stringify(out));`,
      ],
      consumer,
    );
    // Vitest cannot be require()d (it throws on purpose), so the CJS build of an entry that imports it
    // (a conformance suite) loads only under ESM; any other failure is a packaging bug.
    const cjs = await ok(
      process.execPath,
      [
        "--no-warnings",
        "--input-type=commonjs",
        "-e",
        `const out = {}; for (const e of ${list}) { try { out[e] = Object.keys(require(e)).filter((k) => k !== "default" && k !== "module.exports").sort(); } catch (err) { if (!String(err.message).startsWith("Vitest cannot be imported in a CommonJS module")) throw err; out[e] = "needs-vitest-esm"; } } console.log(JSON.stringify(out));`,
      ],
      consumer,
    );
    const esmExports = JSON.parse(esm) as Record<string, string[]>;
    const cjsExports = JSON.parse(cjs) as Record<string, string[] | "needs-vitest-esm">;
    expect(Object.keys(esmExports).sort()).toEqual([...entries].sort());
    const vitestPeers = new Set(
      manifests.filter((m) => m.peerDependencies?.vitest !== undefined).map((m) => m.name),
    );
    for (const e of entries) {
      // @margay/margay ships executables; its root entry is deliberately empty.
      if (e !== "@margay/margay") expect(esmExports[e]!.length, e).toBeGreaterThan(0);
      const cjsSide = cjsExports[e];
      if (cjsSide === "needs-vitest-esm") {
        expect(vitestPeers, `${e} needs vitest but its package does not declare it`).toContain(
          entryPackage(e),
        );
        continue;
      }
      expect({ entry: e, exports: cjsSide }).toEqual({ entry: e, exports: esmExports[e] });
    }
  });

  it("a class exported by several entries of a package is one class (bgp's BgpConfigError)", async () => {
    const script = (load: (spec: string) => string) =>
      `const a = ${load("@margay/bgp")}; const b = ${load("@margay/bgp/rib")}; console.log(JSON.stringify([typeof a.BgpConfigError, a.BgpConfigError === b.BgpConfigError]));`;
    const esm = await ok(
      process.execPath,
      ["--input-type=module", "-e", script((s) => `await import(${JSON.stringify(s)})`)],
      consumer,
    );
    const cjs = await ok(
      process.execPath,
      ["--input-type=commonjs", "-e", script((s) => `require(${JSON.stringify(s)})`)],
      consumer,
    );
    expect(JSON.parse(esm)).toEqual(["function", true]);
    expect(JSON.parse(cjs)).toEqual(["function", true]);
  });

  it("a consumer type-checks with nodenext, node16 (CommonJS) and bundler resolution", async () => {
    const ident = (e: string) => e.replace(/^@margay\//, "").replace(/[^a-z0-9]+/gi, "_");
    const esmSource = [
      ...entries.map((e) => `import * as ${ident(e)} from "${e}";`),
      `import { BgpConfigError } from "@margay/bgp";`,
      `import { BgpConfigError as RibBgpConfigError } from "@margay/bgp/rib";`,
      "export const sameClass: typeof BgpConfigError = RibBgpConfigError;",
      `export const all = [${entries.map(ident).join(", ")}];`,
      "",
    ].join("\n");
    const cjsSource = [
      ...entries.map((e) => `import ${ident(e)} = require("${e}");`),
      `export const all = [${entries.map(ident).join(", ")}];`,
      "",
    ].join("\n");
    await writeFile(join(consumer, "consumer.mts"), esmSource);
    await writeFile(join(consumer, "consumer-bundler.ts"), esmSource);
    await writeFile(join(consumer, "consumer.cts"), cjsSource);
    const base = {
      strict: true,
      skipLibCheck: false,
      noEmit: true,
      target: "ES2022",
      lib: ["ES2023"],
      types: ["node"],
    };
    const configs = {
      nodenext: { module: "nodenext", moduleResolution: "nodenext", files: ["consumer.mts", "consumer.cts"] },
      node16: { module: "node16", moduleResolution: "node16", files: ["consumer.cts"] },
      bundler: { module: "esnext", moduleResolution: "bundler", files: ["consumer-bundler.ts"] },
    };
    // skipLibCheck stays off: errors inside our .d.ts/.d.cts (an ESM-only import from CommonJS types, a
    // dependency's missing @types) surface only when declaration files are checked.
    const results = await Promise.all(
      Object.entries(configs).map(async ([name, { files, ...options }]) => {
        const config = join(consumer, `tsconfig.${name}.json`);
        await writeFile(config, JSON.stringify({ compilerOptions: { ...base, ...options }, files }));
        const r = await run(process.execPath, [TSC, "-p", config], consumer);
        return r.code === 0 ? undefined : `${name}:\n${r.stdout}${r.stderr}`;
      }),
    );
    const failures = results.filter((f) => f !== undefined);
    expect(failures).toEqual([]);
  }, 300_000);
});

describe("@margay/margay installed alone", () => {
  let alone: string;

  beforeAll(async () => {
    alone = join(tmp, "margay-alone");
    await mkdir(alone);
    await writeFile(
      join(alone, "package.json"),
      JSON.stringify({ name: "margay-alone", version: "0.0.0", private: true }),
    );
    await ok(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        "--loglevel=error",
        tarballs.get("@margay/margay")!,
      ],
      alone,
    );
  }, 300_000);

  it("pulls in no other package: its executables carry their dependencies", async () => {
    const installed = (await readdir(join(alone, "node_modules"))).filter((n) => !n.startsWith("."));
    expect(installed).toEqual(["@margay"]);
    expect(await readdir(join(alone, "node_modules", "@margay"))).toEqual(["margay"]);
  });

  it("margay-ipam runs from the install and answers VERSION", async () => {
    const out = await ok(
      join(alone, "node_modules", ".bin", "margay-ipam"),
      [],
      alone,
      JSON.stringify({ cniVersion: "1.1.0", name: "n", type: "margay-ipam" }),
      cleanEnv({ CNI_COMMAND: "VERSION" }),
    );
    const reply = JSON.parse(out) as { supportedVersions?: string[] };
    expect(reply.supportedVersions).toContain("1.1.0");
  });
});
