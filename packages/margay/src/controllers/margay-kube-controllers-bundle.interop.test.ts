import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildKubeControllersBundle } from "./build-bundle.js";
import { CONTROLLER_NAMES } from "./config.js";

/** The margay-kube-controllers bundle, built from the sources, run as an operator runs it. */
describe("margay-kube-controllers bundle", () => {
  const dir = mkdtempSync(join(tmpdir(), "margay-kube-controllers-bundle-"));
  const bin = join(dir, "margay-kube-controllers.cjs");
  let inputs: string[] = [];
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [bin, ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      encoding: "utf8",
      timeout: 30_000,
    });

  beforeAll(async () => {
    inputs = (await buildKubeControllersBundle(bin)).inputs;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is one executable file without pino's transport module", () => {
    expect(statSync(bin).mode & 0o777).toBe(0o755);
    expect(readFileSync(bin, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect(inputs.some((i) => i.includes("thread-stream"))).toBe(false);
    expect(inputs.some((i) => i.includes("controllers/pod-controller.ts"))).toBe(true);
  });

  it("--help names the verbs and every environment variable", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: margay-kube-controllers/);
    for (const s of ["run", "config", "version", "KUBECONFIG", "ENABLED_CONTROLLERS", "DATASTORE_TYPE"])
      expect(r.stdout).toContain(s);
    for (const s of ["ETCD_ENDPOINTS", "LOG_LEVEL", "MARGAY_LEADER_ELECTION", "POD_NAME"])
      expect(r.stdout).toContain(s);
    expect(r.stdout).toContain(CONTROLLER_NAMES.join(","));
  });

  it("version, config and the documented exit codes", () => {
    const v = run(["version"]);
    expect([v.status, v.stdout]).toEqual([
      0,
      expect.stringMatching(/^margay-kube-controllers \d+\.\d+\.\d+\n$/),
    ]);
    const env = { KUBECONFIG: "/etc/k/config", ETCD_ENDPOINTS: "https://e:2379", POD_NAME: "kc-1" };
    const c = run(["config"], { ...env, ENABLED_CONTROLLERS: "policy,workloadendpoint" });
    expect(c.status).toBe(0);
    const doc = JSON.parse(c.stdout);
    expect(doc.enabledControllers).toEqual(["policy", "workloadendpoint"]);
    expect(doc.leaderElection.identity).toBe("kc-1");
    expect(run(["--no-such-flag"]).status).toBe(2);
    const bad = run(["config"], { ...env, ENABLED_CONTROLLERS: "policy,nope" });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toContain("env:ENABLED_CONTROLLERS");
    // An unreadable kubeconfig: startup fails with its exit code and says why.
    const start = run([], {
      ...env,
      ETCD_ENDPOINTS: "http://127.0.0.1:1",
      KUBECONFIG: join(dir, "missing-kubeconfig"),
      MARGAY_HEALTH_ENABLED: "off",
      MARGAY_METRICS_ENABLED: "off",
    });
    expect(start.status).toBe(4);
    expect(start.stderr).toContain("could not start");
  });

  it("a closed stdout pipe is not a crash", () => {
    const r = spawnSync("sh", ["-c", `"${process.execPath}" "${bin}" --help | head -1`], {
      encoding: "utf8",
    });
    expect(r.stdout).toMatch(/^Usage: margay-kube-controllers/);
    expect(r.stderr).not.toContain("EPIPE");
  });
});
