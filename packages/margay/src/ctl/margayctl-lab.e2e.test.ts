/**
 * The built margayctl against the node agent's cluster lab (3 hosts, etcd in its own namespace, a real
 * `margay-node` per host, BGP mesh). One lab for the file: pods are added through the agents' workload
 * API (two on host1, one on host2, none on host3), then `node list`, `node status` and `ipam show` are
 * run as an operator would, from a machine with datastore access only: the lab's etcd reached from this
 * process through its loopback bridge (`lab.etcdClientEndpoint`).
 *
 * Needs the bundles: `npx lerna run build --scope @margay/margay`.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Datastore } from "@margay/datastore";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pool, waitForSessions } from "../node/e2e-support.js";
import { type ClusterLab, createClusterLab, type LabPod } from "../testing/index.js";
import { requireBuiltBinary, runMargayctl } from "./ctl-harness.js";

const FLAT = "10.246.0.0/16";

describe("margayctl against the cluster lab (3 hosts, etcd, BGP mesh)", () => {
  let lab: ClusterLab;
  let ds: Datastore;
  const pods: LabPod[] = [];
  const ctl = (args: string[]) =>
    runMargayctl(args, {
      env: { DATASTORE_TYPE: "etcdv3", ETCD_ENDPOINTS: lab.etcdClientEndpoint ?? "" },
      timeoutMs: 60_000,
    });

  beforeAll(async () => {
    requireBuiltBinary();
    lab = await createClusterLab({
      hosts: 3,
      router: false,
      startAgents: false,
      agentBinary: process.env.MARGAY_E2E_AGENT_BINARY,
      agentEnv: { MARGAY_NETWORKING_BACKEND: "bgp", NO_DEFAULT_POOLS: "true", MARGAY_STATUS_INTERVAL: "1s" },
    });
    try {
      ds = lab.datastore();
      await ds.create(pool("flat", FLAT, { natOutgoing: false }));
      for (const h of lab.hosts) lab.startAgent(h);
      for (const h of lab.hosts) await lab.waitReady(h);
      const [h1, h2] = lab.hosts;
      pods.push(await lab.addPod(h1!, { name: "a-host1", pools: ["flat"] }));
      pods.push(await lab.addPod(h1!, { name: "b-host1", pools: ["flat"] }));
      pods.push(await lab.addPod(h2!, { name: "a-host2", pools: ["flat"] }));
      await waitForSessions(lab, ds, (h) => lab.hosts.filter((o) => o !== h).map((o) => o.ip));
    } catch (e) {
      const logs = await Promise.all(
        lab.hosts.map(async (h) => `--- ${h.name}\n${(await lab.logs(h)).slice(-3000)}`),
      );
      await lab.close();
      throw new Error(`${e instanceof Error ? e.message : String(e)}\n${logs.join("\n")}`, { cause: e });
    }
  }, 300_000);

  afterAll(async () => {
    await lab?.close();
  }, 120_000);

  it("node list: the three hosts, Ready, with their BGP addresses", { timeout: 60_000 }, async () => {
    const r = await ctl(["node", "list", "-o", "json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.stdout) as { name: string; status: string; ipv4?: string }[];
    expect(rows.map((n) => n.name).sort()).toEqual(lab.hosts.map((h) => h.name).sort());
    for (const h of lab.hosts) {
      const row = rows.find((n) => n.name === h.name);
      expect(row?.status).toBe("Ready");
      expect(row?.ipv4?.split("/")[0]).toBe(h.ip);
    }
  });

  it("node status: every host's mesh peers Established, its address and MTU", {
    timeout: 90_000,
  }, async () => {
    for (const h of lab.hosts) {
      const r = await ctl(["node", "status", h.name, "-o", "json"]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const st = JSON.parse(r.stdout) as {
        status?: {
          addresses?: { ipv4?: string };
          mtu?: number;
          bgp?: { peers?: { address: string; state: string; type?: string }[] };
        };
      };
      const s = st.status ?? (st as never);
      expect((s.addresses?.ipv4 ?? "").split("/")[0]).toBe(h.ip);
      expect(typeof s.mtu).toBe("number");
      expect(s.mtu).toBeGreaterThan(1000);
      const peers = s.bgp?.peers ?? [];
      expect(peers.map((p) => p.address.split("/")[0]).sort()).toEqual(
        lab.hosts
          .filter((o) => o !== h)
          .map((o) => o.ip)
          .sort(),
      );
      for (const p of peers) expect(p.state).toBe("Established");

      const text = await ctl(["node", "status", h.name]);
      expect(text.code).toBe(0);
      for (const o of lab.hosts.filter((x) => x !== h))
        expect(text.stdout).toMatch(new RegExp(`${o.ip.replaceAll(".", "\\.")}.*Established`));
      expect(text.stdout).toContain(String(s.mtu));
    }
    const missing = await ctl(["node", "status", "no-such-host"]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("ipam show: the pool's use, one block per node that has pods, in-use counts per node", {
    timeout: 60_000,
  }, async () => {
    const r = await ctl(["ipam", "show", "--show-blocks", "--by-node", "-o", "json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const view = JSON.parse(r.stdout) as {
      pools: { cidr: string; inUse: number; blocks?: { cidr: string; inUse: number }[] }[];
      nodes: Record<string, { blocks: number; inUse: number; borrowed: number }>;
    };
    const flat = view.pools.find((p) => p.cidr === FLAT);
    expect(flat, r.stdout).toBeDefined();
    expect(flat!.inUse).toBe(3);
    const [h1, h2, h3] = lab.hosts;
    expect(view.nodes[h1!.name]).toEqual({ blocks: 1, inUse: 2, borrowed: 0 });
    expect(view.nodes[h2!.name]).toEqual({ blocks: 1, inUse: 1, borrowed: 0 });
    expect(view.nodes[h3!.name]?.inUse ?? 0).toBe(0);
    for (const p of pods) {
      const who = await ctl(["ipam", "show", "--ip", p.ip, "-o", "json"]);
      expect(who.code, who.stderr).toBe(0);
      expect(who.stdout).toContain(p.ip);
    }
    const text = await ctl(["ipam", "show", "--by-node"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`${h1!.name}\\s+1\\s+2\\s+0`));

    const bad = await ctl(["ipam", "show", "--ip", "not-an-ip"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("policy stats reads host1's real table (as root, --netns): profile chains mapped, or 'no counters' said", {
    timeout: 60_000,
  }, async () => {
    const h1 = lab.hosts[0]!;
    const nft = JSON.parse(
      execFileSync("ip", ["netns", "exec", h1.ns, "nft", "-j", "list", "table", "inet", "margay"], {
        encoding: "utf8",
      }),
    ) as { nftables: { rule?: { expr?: { counter?: unknown }[] } }[] };
    const hasCounters = nft.nftables.some((i) => i.rule?.expr?.some((e) => e.counter !== undefined));
    const r = await ctl(["policy", "stats", "--netns", h1.ns, "--all", "-o", "json"]);
    if (hasCounters) {
      expect(r.code, r.stderr).toBe(0);
      const rows = JSON.parse(r.stdout) as { tier: string; policy: string; rule: number | null }[];
      expect(rows).toContainEqual(
        expect.objectContaining({ tier: "profile", policy: "kns.default", rule: 0 }),
      );
    } else {
      // Today's dataplane renders policy rules without `counter`: the command says exactly that.
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("carry no nft counter statement");
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  it("node diags of host1 (--netns, its log file, the built margay-node): the agent's table and pod routes", {
    timeout: 90_000,
  }, async () => {
    const h1 = lab.hosts[0]!;
    const dir = mkdtempSync(join(tmpdir(), "margayctl-lab-diags-"));
    try {
      const out = join(dir, "d.tar.gz");
      const agentBin = new URL("../../dist/bin/margay-node.cjs", import.meta.url).pathname;
      const r = await ctl([
        "node",
        "diags",
        h1.name,
        "-o",
        out,
        "--log-file",
        h1.logFile,
        "--agent-bin",
        agentBin,
        "--netns",
        h1.ns,
      ]);
      expect(r.code, r.stderr).toBe(0);
      execFileSync("tar", ["-xzf", out, "-C", dir]);
      const read = (f: string) => readFileSync(join(dir, "margay-diags", f), "utf8");
      expect(read("nftables.txt")).toContain("table inet margay");
      const routes = read("routes-ipv4.json");
      for (const p of pods.filter((p) => p.host === h1)) expect(routes).toContain(p.ip);
      expect(read("nodestatus.yaml")).toContain("Established");
      expect(read("agent.log").length).toBeGreaterThan(0);
      // margay-node config resolves from margayctl's environment, which may not be an agent's: either
      // its JSON is there or errors.txt says why not.
      const files = execFileSync("tar", ["-tzf", out], { encoding: "utf8" });
      if (files.includes("margay-diags/config.json")) JSON.parse(read("config.json"));
      else expect(read("errors.txt")).toContain("config.json");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
