import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// The shipped `/testing` subpaths are for plain node scripts too (a benchmark starting a private etcd,
// a lab script building namespaces), so they must load without vitest installed: vitest is an optional
// peer dependency, needed only by the `/conformance` subpaths. Each check imports the BUILT subpath
// (run `npm run build` first) in a child `node` from a temporary project whose node_modules links every
// package of the workspace's node_modules except vitest. `--preserve-symlinks` keeps resolution inside
// that project, so vitest is truly unresolvable there (the `/conformance` control proves it).

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url));
const HIDDEN = new Set(["vitest", "@vitest", ".bin", ".package-lock.json"]);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function node(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin" };
    const child = spawn(process.execPath, ["--preserve-symlinks", ...args], { cwd, env, stdio: "pipe" });
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
  });
}

/** Fails (instead of passing on an old build) when the subpath's sources are newer than its build. */
function assertBuilt(pkg: string, sub: string): void {
  const built = join(ROOT, "packages", pkg, "dist", sub, "index.js");
  if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` before this test`);
  const srcDir = join(ROOT, "packages", pkg, "src", sub);
  const builtAt = statSync(built).mtimeMs;
  for (const f of readdirSync(srcDir)) {
    if (!f.endsWith(".ts") || f.endsWith(".test.ts")) continue;
    if (statSync(join(srcDir, f)).mtimeMs > builtAt) {
      throw new Error(`${join(srcDir, f)} is newer than ${built}: rebuild @margay/${pkg} before this test`);
    }
  }
}

// The child scripts name the packages through `S` so that the import lint (monorepo/layers.test.ts),
// which reads this file's text, does not take a child's import for one of this package's own.
const S = "@margay";

/** Each `/testing` subpath and a script that uses something from it (no test runner involved). */
const SUBPATHS: readonly { pkg: string; esm: string; cjs: string }[] = [
  {
    pkg: "datastore",
    esm: `import { startEtcd, freePort, createTestPki } from "${S}/datastore/testing";
      if (typeof startEtcd !== "function" || typeof createTestPki !== "function") throw new Error("missing");
      const port = await freePort();
      console.log(Number.isInteger(port) && port > 0 ? "ok" : "bad port");`,
    cjs: `const t = require("${S}/datastore/testing");
      if (typeof t.startEtcd !== "function") throw new Error("missing");
      t.freePort().then((p) => console.log(p > 0 ? "ok" : "bad port"));`,
  },
  {
    pkg: "dataplane",
    esm: `import { CONFORMANCE_FIXTURE, createNetnsLab, startProbeAgent } from "${S}/dataplane/testing";
      if (typeof createNetnsLab !== "function" || typeof startProbeAgent !== "function") throw new Error("missing");
      console.log(CONFORMANCE_FIXTURE.nodeName === "node-a" ? "ok" : "bad fixture");`,
    cjs: `const t = require("${S}/dataplane/testing");
      console.log(typeof t.createNetnsLab === "function" && t.CONFORMANCE_FIXTURE.nodeName === "node-a" ? "ok" : "bad");`,
  },
  {
    pkg: "cni",
    esm: `import { runConformance, createNetns } from "${S}/cni/testing";
      console.log(typeof runConformance === "function" && typeof createNetns === "function" ? "ok" : "bad");`,
    cjs: `const t = require("${S}/cni/testing");
      console.log(typeof t.runConformance === "function" ? "ok" : "bad");`,
  },
  {
    pkg: "kube-adapter",
    esm: `import { startFakeKubeApiServer } from "${S}/kube-adapter/testing";
      console.log(typeof startFakeKubeApiServer === "function" ? "ok" : "bad");`,
    cjs: `const t = require("${S}/kube-adapter/testing");
      console.log(typeof t.startFakeKubeApiServer === "function" ? "ok" : "bad");`,
  },
];

describe("/testing subpaths load without vitest", () => {
  let project = "";

  beforeAll(async () => {
    for (const { pkg } of SUBPATHS) assertBuilt(pkg, "testing");
    project = await mkdtemp(join(tmpdir(), "margay-no-vitest-"));
    const modules = join(project, "node_modules");
    await mkdir(modules);
    for (const name of await readdir(join(ROOT, "node_modules"))) {
      if (!HIDDEN.has(name)) await symlink(join(ROOT, "node_modules", name), join(modules, name));
    }
  });

  afterAll(async () => {
    if (project !== "") await rm(project, { recursive: true, force: true });
  });

  it("control: vitest is unresolvable in the project, so the /conformance subpath fails to load", async () => {
    for (const pkg of ["datastore", "dataplane"]) {
      assertBuilt(pkg, "conformance");
      const r = await node(["--input-type=module", "-e", `import "${S}/${pkg}/conformance";`], project);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toMatch(/Cannot find (package|module) 'vitest'/);
    }
  });

  for (const { pkg, esm, cjs } of SUBPATHS) {
    it(`@margay/${pkg}/testing: ESM import and CommonJS require work in a plain node script`, async () => {
      const a = await node(["--input-type=module", "-e", esm], project);
      expect(a.stderr).toBe("");
      expect(a.stdout.trim()).toBe("ok");
      const b = await node(["--input-type=commonjs", "-e", cjs], project);
      expect(b.stderr).toBe("");
      expect(b.stdout.trim()).toBe("ok");
    });
  }
});
