/**
 * `policy stats` against a real nftables table in a network namespace the test creates (root).
 *
 * The policy's chain is what the agent's renderer produces for it (`renderRule` of the calculated rules,
 * under the chain name `nftNames.policy`), loaded into `inet margay` of the namespace. Today's renderer
 * emits no `counter` statement: the first test pins that `policy stats` says so (exit 1, one line) on the
 * table as rendered. The second adds `counter` to each rendered line (what the dataplane would need to
 * emit), pings through the chain and checks the counts land on the right rule index (one rule renders
 * to an IPv4 and an IPv6 line; both are summed into it).
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nftNames, renderRule } from "@margay/dataplane";
import { createMemoryDatastore } from "@margay/datastore";
import { createCalcGraph, type PolicyModelResource } from "@margay/policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RuleStats } from "./commands/policy-stats.js";
import type { CtlIo } from "./io.js";
import { PLAIN } from "./output.js";
import { runCtl } from "./run.js";

const NS = `h14stats${process.pid}`;
let dir: string;

const RESOURCES = [
  {
    apiVersion: "margay.io/v1",
    kind: "WorkloadEndpoint",
    metadata: { name: "node--1-k8s-web--0-eth0", namespace: "prod", labels: { app: "web" } },
    spec: {
      orchestrator: "k8s",
      node: "node-1",
      pod: "web-0",
      endpoint: "eth0",
      interfaceName: "cali0123456789a",
      ipNetworks: ["10.244.3.5/32"],
    },
  },
  {
    apiVersion: "margay.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "allow-web", namespace: "prod" },
    spec: {
      tier: "default",
      order: 10,
      selector: "app == 'web'",
      types: ["Ingress"],
      ingress: [
        { action: "Allow", protocol: "TCP", source: { nets: ["10.1.0.0/16"] }, destination: { ports: [80] } },
        { action: "Allow", protocol: "ICMP", source: { nets: ["127.0.0.0/8"] } },
        { action: "Deny", protocol: "UDP" },
      ],
    },
  },
] as const;

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const value: CtlIo = {
    out: (t) => void out.push(t),
    err: (t) => void err.push(t),
    readStdin: async () => "",
    env: {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      DATASTORE_TYPE: "memory",
      MARGAY_SNAPSHOT_PATH: join(dir, "ds.json"),
    },
    isTTY: false,
    style: PLAIN,
    cwd: dir,
  };
  return { io: value, out, err };
}

/** The policy's ingress chain as the agent's renderer writes it; `counter` added when asked. */
function loadTable(withCounters: boolean): void {
  const graph = createCalcGraph();
  for (const r of RESOURCES) graph.upsert(r as unknown as PolicyModelResource);
  graph.markInSync();
  const p = graph.flush().find((u) => u.kind === "active-policy-update");
  if (p?.kind !== "active-policy-update") throw new Error("policy not active");
  const marks = { allow: 0x10000, pass: 0x20000 };
  const lines = p.inbound
    .flatMap((r) => renderRule(r, marks))
    // The dataplane renders a counter before each verdict; without: a table of an older dataplane.
    .map((l) => (withCounters ? l : l.replace(" counter ", " ")));
  const chain = nftNames.policy(p.id, "in");
  const script = [
    "table inet margay {",
    `  chain ${chain} {`,
    ...lines.map((l) => `    ${l}`),
    "  }",
    "  chain input {",
    "    type filter hook input priority 0; policy accept;",
    `    iifname "lo" jump ${chain}`,
    "  }",
    "}",
  ].join("\n");
  try {
    execFileSync("ip", ["netns", "exec", NS, "nft", "delete", "table", "inet", "margay"], {
      stdio: "ignore",
    });
  } catch {
    // Not there yet.
  }
  execFileSync("ip", ["netns", "exec", NS, "nft", "-f", "-"], { input: script });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "margayctl-stats-"));
  execFileSync("ip", ["netns", "add", NS]);
  execFileSync("ip", ["-n", NS, "link", "set", "lo", "up"]);
  const ds = createMemoryDatastore({ snapshotPath: join(dir, "ds.json") });
  for (const r of RESOURCES) await ds.create(r as never);
  await ds.flush();
  await ds.close();
});

afterAll(() => {
  try {
    execFileSync("ip", ["netns", "del", NS]);
  } catch {
    // Already gone.
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("margayctl policy stats", () => {
  it("on a table without counters (an older dataplane): exit 1 and one line saying so", {
    timeout: 60_000,
  }, async () => {
    loadTable(false);
    const { io: ctlIo, out, err } = io();
    const code = await runCtl(["policy", "stats", "--netns", NS], ctlIo);
    expect(out.join("")).toBe("");
    expect(err.join("").trim().split("\n")).toHaveLength(1);
    expect(err.join("")).toContain("carry no nft counter statement");
    expect(code).toBe(1);
  });

  it("maps nft counters back to tier / policy / direction / rule index", { timeout: 60_000 }, async () => {
    loadTable(true);
    execFileSync("ip", ["netns", "exec", NS, "ping", "-c", "3", "-i", "0.2", "-W", "1", "127.0.0.1"]);
    const { io: ctlIo, out, err } = io();
    const code = await runCtl(["policy", "stats", "--netns", NS, "--all", "-o", "json"], ctlIo);
    expect(err.join("")).toBe("");
    expect(code).toBe(0);
    const rows = JSON.parse(out.join("")) as RuleStats[];
    expect(rows.map((r) => [r.tier, r.policy, r.direction, r.rule, r.action])).toEqual([
      ["default", "prod/allow-web", "ingress", 0, "allow"],
      ["default", "prod/allow-web", "ingress", 1, "allow"],
      ["default", "prod/allow-web", "ingress", 2, "deny"],
    ]);
    // Echo requests and replies both enter on lo from 127.0.0.1.
    expect(rows[1]?.packets).toBeGreaterThanOrEqual(3);
    expect(rows[1]?.bytes).toBeGreaterThan(0);
    expect(rows[0]?.packets).toBe(0);
    expect(rows[2]?.packets).toBe(0);

    const table = io();
    expect(await runCtl(["policy", "stats", "--netns", NS], table.io)).toBe(0);
    const text = table.out.join("");
    expect(text).toMatch(/TIER\s+POLICY\s+DIRECTION\s+RULE\s+ACTION\s+PACKETS\s+BYTES/);
    expect(text).toMatch(/default\s+prod\/allow-web\s+ingress\s+1\s+allow\s+\d+\s+\d+/);
    expect(text).not.toMatch(/ingress\s+0\s+allow/);
  });

  it.each([
    [["--netns", "a/b"], 2, "--netns: a network namespace name"],
    [["-o", "yaml"], 2, "-o: table or json"],
    [["--netns", "h14-no-such-ns"], 1, "nft -j list table inet margay (netns h14-no-such-ns)"],
  ])("bad input %j: non-zero exit and one line", async (args, exit, cause) => {
    const { io: ctlIo, out, err } = io();
    const code = await runCtl(["policy", "stats", ...args], ctlIo);
    expect(code).toBe(exit);
    expect(out.join("")).toBe("");
    expect(err.join("").trim().split("\n")).toHaveLength(1);
    expect(err.join("")).toContain(cause);
  });
});
