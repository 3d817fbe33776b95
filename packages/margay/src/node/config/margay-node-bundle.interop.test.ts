import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildMargayNodeBundle } from "./build-bundle.js";
import { AGENT_CONFIG_SCHEMA, SETTING_NAMES } from "./schema.js";

/** The margay-node bundle, built from the sources, run as an operator runs it (`node margay-node.cjs`). */
describe("margay-node bundle", () => {
  const dir = mkdtempSync(join(tmpdir(), "margay-node-bundle-"));
  const bin = join(dir, "margay-node.cjs");
  let inputs: string[] = [];
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [bin, ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      encoding: "utf8",
      timeout: 30_000,
    });

  beforeAll(async () => {
    inputs = (await buildMargayNodeBundle(bin)).inputs;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is one executable file without pino's transport module (no worker thread files needed)", () => {
    expect(statSync(bin).mode & 0o777).toBe(0o755);
    expect(readFileSync(bin, "utf8").startsWith("#!/usr/bin/env node\n")).toBe(true);
    expect(inputs.some((i) => i.includes("thread-stream"))).toBe(false);
    expect(inputs.some((i) => /pino[\\/]pino\.js$/.test(i))).toBe(true);
  });

  it("--help lists every flag with its environment variable", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    for (const n of SETTING_NAMES) {
      expect(r.stdout, n).toContain(`--${AGENT_CONFIG_SCHEMA[n].flag}`);
      expect(r.stdout, n).toContain(`[env ${AGENT_CONFIG_SCHEMA[n].env}]`);
    }
  });

  it("version, config and the documented exit codes", () => {
    const v = run(["version"]);
    expect([v.status, v.stdout]).toEqual([0, expect.stringMatching(/^margay-node \d+\.\d+\.\d+\n$/)]);
    const c = run(["config", "--ip", "10.0.0.5/24"], { NODENAME: "n1", ETCD_ENDPOINTS: "https://e:2379" });
    expect(c.status).toBe(0);
    const doc = JSON.parse(c.stdout);
    expect(doc.config.datastore.type).toBe("etcd");
    expect(doc.sources.ip.source).toBe("flag");
    expect(run(["--no-such-flag"]).status).toBe(2);
    const bad = run(["config"], { MARGAY_VXLAN_PORT: "0" });
    expect(bad.status).toBe(3);
    expect(bad.stderr).toContain("env:MARGAY_VXLAN_PORT");
  });

  it("a closed stdout pipe is not a crash", () => {
    const r = spawnSync("sh", ["-c", `"${process.execPath}" "${bin}" --help | head -1`], {
      encoding: "utf8",
    });
    expect(r.stdout).toMatch(/^Usage: margay-node/);
    expect(r.stderr).not.toContain("EPIPE");
  });
});
