/**
 * Every example under examples/ runs here as written (imported, so it runs against the sources) and
 * prints what its header promises. Examples that need a real peer or root live in the interop / netns
 * tiers: see packages/margay/src/guides/examples.*.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runPlugin } from "@margay/cni";
import { afterEach, describe, expect, it, vi } from "vitest";

async function run(path: string): Promise<string[]> {
  const lines: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    lines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
  });
  await import(/* @vite-ignore */ path);
  return lines;
}

describe("examples/", () => {
  afterEach(() => vi.restoreAllMocks());

  it("ipam-allocation.ts: one block per host, a second block when the first is full, idempotent release", async () => {
    const out = await run("../examples/ipam-allocation.ts");
    expect(out[0]).toMatch(/^host-a: 18 pods in block\(s\) 10\.244\.0\.\d+\/28, 10\.244\.0\.\d+\/28$/);
    expect(out[1]).toMatch(/^host-b: 2 pods in block\(s\) 10\.244\.0\.\d+\/28$/);
    expect(out[2]).toMatch(/^released: \["10\.244\.0\.\d+"\]$/);
    expect(out[3]).toBe("released again: []");
    expect(out[4]).toBe("pool pods 10.244.0.0/24: 19 in use of 256");
    expect(out.filter((l) => l.includes("host:host-a"))).toHaveLength(2);
    expect(out.filter((l) => l.includes("host:host-b"))).toHaveLength(1);
  });

  it("policy-explain.ts: allowed inside the tenant, denied by port and across tenants, with the reason", async () => {
    const out = (await run("../examples/policy-explain.ts")).join("\n");
    expect(out).toMatch(/shop\/web -> shop\/api:8080 {2}allow/);
    expect(out).toMatch(/shop\/web -> shop\/api:22 {2}deny/);
    expect(out).toMatch(/bank\/teller -> shop\/api:8080 {2}deny/);
    expect(out).toContain("tenant-isolation");
    expect(out).toContain("backend-ingress");
  });

  it("kube-adapter-fake-api.ts: namespace, pod and NetworkPolicy converted; a relabel arrives by watch", async () => {
    const out = await run("../examples/kube-adapter-fake-api.ts");
    expect(out.slice(0, 3)).toEqual([
      "Profile kns.shop",
      "WorkloadEndpoint shop/host--a-k8s-web--1-eth0",
      "NetworkPolicy shop/knp.default.web-from-frontend",
    ]);
    expect(out[3]).toMatch(/^modified host--a-k8s-web--1-eth0 labels \{"app":"web","stage":"canary",/);
  });

  it("cni-plugin.ts: ADD allocates, CHECK confirms, DEL releases (twice), bad config is code 7", async () => {
    const { handlers, info } = await import("../examples/cni-plugin.js");
    const dir = mkdtempSync(join(tmpdir(), "margay-example-cni-"));
    try {
      const config = { cniVersion: "1.1.0", name: "mynet", type: "example-ipam", pool: "10.250.0.0/24" };
      const stdin = JSON.stringify({ ...config, snapshotPath: join(dir, "state.json") });
      const env = (command: string) => ({
        CNI_COMMAND: command,
        CNI_CONTAINERID: "c1",
        CNI_NETNS: "/proc/self/ns/net",
        CNI_IFNAME: "eth0",
        CNI_PATH: "/opt/cni/bin",
      });
      const add = await runPlugin(handlers, info, { env: env("ADD"), stdin });
      expect(add.exitCode, add.stdout).toBe(0);
      const result = JSON.parse(add.stdout) as { ips: { address: string }[] };
      expect(result.ips[0]!.address).toMatch(/^10\.250\.0\.\d+\/24$/);
      const withPrev = JSON.stringify({ ...JSON.parse(stdin), prevResult: result });
      expect((await runPlugin(handlers, info, { env: env("CHECK"), stdin: withPrev })).exitCode).toBe(0);
      // A second container gets another address from the same (persisted) state.
      const add2 = await runPlugin(handlers, info, { env: { ...env("ADD"), CNI_CONTAINERID: "c2" }, stdin });
      expect(JSON.parse(add2.stdout).ips[0].address).not.toBe(result.ips[0]!.address);
      expect((await runPlugin(handlers, info, { env: env("DEL"), stdin })).exitCode).toBe(0);
      expect((await runPlugin(handlers, info, { env: env("DEL"), stdin })).exitCode).toBe(0);
      const stale = await runPlugin(handlers, info, { env: env("CHECK"), stdin: withPrev });
      expect(stale.exitCode).toBe(1);
      expect(JSON.parse(stale.stdout)).toMatchObject({ code: 11 });
      const bad = await runPlugin(handlers, info, { env: env("ADD"), stdin: JSON.stringify(config) });
      expect(JSON.parse(bad.stdout)).toMatchObject({ code: 7 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
