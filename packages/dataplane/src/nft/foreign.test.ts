import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isDataplaneError } from "../errors.js";
import type { CommandRunner } from "../kernel/runner.js";
import { CURRENT_NETNS, namedNetns } from "../kernel/netns.js";
import {
  describeFinding,
  findLegacyIptablesDrops,
  findShadowingChains,
  IPTABLES_LEGACY_OWNER,
  margayHooks,
  readLegacyIptablesDrops,
  readShadowingChains,
} from "./foreign.js";

// testdata/*.json: `nft -j list ruleset` (nftables v1.0.6) of a namespace holding margay's rendered table
// and foreign tables; regenerate with `MARGAY_RECORD_NFT=1 npx vitest run --project netns
// packages/dataplane/src/nft/foreign.netns.test.ts`.
const load = (name: string): unknown =>
  JSON.parse(readFileSync(join(import.meta.dirname, "testdata", name), "utf8"));
const OURS = margayHooks({ table: "margay", priority: 0 });

describe("margayHooks", () => {
  it("lists the base chains renderBase hooks (raw, dstnat - 10, the filter priority, srcnat)", () => {
    expect(margayHooks({ table: "t", priority: 5 }).hooks).toEqual([
      { hook: "prerouting", priority: -300 },
      { hook: "output", priority: -300 },
      { hook: "prerouting", priority: -110 },
      { hook: "forward", priority: 5 },
      { hook: "input", priority: 5 },
      { hook: "output", priority: 5 },
      { hook: "postrouting", priority: 100 },
    ]);
  });

  it("agrees with the hooks of our recorded table", () => {
    const rs = load("margay-and-inet-filter-p10.json") as { nftables: Record<string, unknown>[] };
    const ourBase = rs.nftables
      .map((i) => i.chain as { table: string; hook?: string; prio?: number } | undefined)
      .filter((c) => c?.table === "margay" && c.hook !== undefined)
      .map((c) => ({ hook: c!.hook, priority: c!.prio }));
    expect(new Set(ourBase.map((h) => JSON.stringify(h)))).toEqual(
      new Set(OURS.hooks.map((h) => JSON.stringify(h))),
    );
  });
});

describe("findShadowingChains", () => {
  it("reports a foreign forward chain with policy drop before ours", () => {
    const found = findShadowingChains(load("margay-and-inet-filter-m10.json"), OURS);
    expect(found).toEqual([
      {
        family: "inet",
        table: "filter",
        chain: "forward",
        hook: "forward",
        priority: -10,
        ourPriority: 0,
        order: "before",
        why: "policy drop",
      },
    ]);
    expect(describeFinding(found[0]!)).toBe(
      "foreign nftables chain inet/filter/forward (hook forward, priority -10, policy drop) runs before margay's and may drop traffic margay allows",
    );
  });

  it("does not report the same chain after ours, nor our own drop rules", () => {
    expect(findShadowingChains(load("margay-and-inet-filter-p10.json"), OURS)).toEqual([]);
  });

  it("names owners, follows jumps to drop rules, reports equal priority, skips bridge and accept-only chains", () => {
    const found = findShadowingChains(load("mixed-foreign.json"), OURS);
    expect(found).toEqual([
      {
        family: "ip",
        table: "filter",
        chain: "FORWARD",
        hook: "forward",
        priority: 0,
        ourPriority: 0,
        order: "same-priority",
        why: "1 rule that drops",
        owner: "iptables (nft backend)",
      },
      {
        family: "ip",
        table: "kube-proxy",
        chain: "filter-forward",
        hook: "forward",
        priority: -110,
        ourPriority: 0,
        order: "before",
        why: "1 rule that drops",
        owner: "kube-proxy (nftables mode)",
      },
    ]);
  });

  it("compares a chain of another table named like ours (other family) as foreign", () => {
    const rs = {
      nftables: [
        { chain: { family: "ip", table: "margay", name: "f", hook: "input", prio: -1, policy: "drop" } },
        { chain: { family: "ip", table: "x", name: "late", hook: "postrouting", prio: 101, policy: "drop" } },
        { chain: { family: "ip", table: "x", name: "ingress", hook: "ingress", prio: -500, policy: "drop" } },
      ],
    };
    expect(findShadowingChains(rs, OURS).map((f) => `${f.family}/${f.table}/${f.chain}`)).toEqual([
      "ip/margay/f",
    ]);
  });

  it("counts several drop rules and survives jump cycles", () => {
    const rule = (chain: string, expr: unknown[]) => ({ rule: { family: "inet", table: "x", chain, expr } });
    const rs = {
      nftables: [
        { chain: { family: "inet", table: "x", name: "in", hook: "input", prio: -5, policy: "accept" } },
        { chain: { family: "inet", table: "x", name: "a" } },
        rule("in", [{ jump: { target: "a" } }]),
        rule("a", [{ drop: null }]),
        rule("a", [{ reject: { type: "tcp reset" } }]),
        rule("a", [{ goto: { target: "in" } }]),
        rule("a", [{ accept: null }]),
      ],
    };
    expect(findShadowingChains(rs, OURS).map((f) => f.why)).toEqual(["2 rules that drop"]);
  });

  it("rejects input that is not nft JSON with a typed error", () => {
    for (const bad of [null, "x", {}, { nftables: 3 }, { nftables: [{ chain: { family: "ip" } }] }]) {
      let err: unknown;
      try {
        findShadowingChains(bad, OURS);
      } catch (e) {
        err = e;
      }
      expect(isDataplaneError(err, "invalid-update")).toBe(true);
    }
  });
});

describe("readShadowingChains", () => {
  it("runs nft -j list ruleset as argv (through nsenter for a named namespace)", async () => {
    const calls: (readonly string[])[] = [];
    const runner: CommandRunner = {
      async run(argv) {
        calls.push(argv);
        return {
          code: 0,
          stdout: readFileSync(
            join(import.meta.dirname, "testdata", "margay-and-inet-filter-m10.json"),
            "utf8",
          ),
          stderr: "",
        };
      },
    };
    expect(await readShadowingChains(runner, namedNetns("n1"), OURS)).toHaveLength(1);
    expect(await readShadowingChains(runner, CURRENT_NETNS, OURS)).toHaveLength(1);
    expect(calls).toEqual([
      ["nsenter", "--net=/run/netns/n1", "--", "nft", "-j", "list", "ruleset"],
      ["nft", "-j", "list", "ruleset"],
    ]);
  });

  it("turns non-JSON output into command-failed", async () => {
    const runner: CommandRunner = { run: async () => ({ code: 0, stdout: "table inet x {", stderr: "" }) };
    await expect(readShadowingChains(runner, CURRENT_NETNS, OURS)).rejects.toMatchObject({
      code: "command-failed",
    });
  });
});

describe("iptables-legacy", () => {
  // testdata/iptables-legacy-save.txt: iptables-legacy-save v1.8.9 of a scratch namespace (FORWARD policy
  // DROP, two INPUT drops), with a KUBE-FIREWALL-like user chain and a nat table added by hand.
  const save = readFileSync(join(import.meta.dirname, "testdata", "iptables-legacy-save.txt"), "utf8");
  it("reports filter chains with policy DROP or DROP/REJECT rules (following user chains), at priority 0", () => {
    const f = findLegacyIptablesDrops(save, "ip", OURS);
    expect(f.map((x) => [x.chain, x.hook, x.why, x.order])).toEqual([
      ["INPUT", "input", "2 rules that drop", "same-priority"],
      ["FORWARD", "forward", "policy drop", "same-priority"],
      ["OUTPUT", "output", "1 rule that drops", "same-priority"],
    ]);
    expect(
      f.every((x) => x.owner === IPTABLES_LEGACY_OWNER && x.table === "filter" && x.family === "ip"),
    ).toBe(true);
  });

  it("reports nothing for empty output or an accept-only filter table", () => {
    expect(findLegacyIptablesDrops("", "ip6", OURS)).toEqual([]);
    expect(
      findLegacyIptablesDrops("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\nCOMMIT\n", "ip", OURS),
    ).toEqual([]);
  });

  it("runs both save tools without -t and treats a missing tool as no rules", async () => {
    const calls: (readonly string[])[] = [];
    const runner: CommandRunner = {
      async run(argv) {
        calls.push(argv);
        if (argv.includes("ip6tables-legacy-save")) throw new Error("spawn ENOENT");
        return { code: 0, stdout: save, stderr: "" };
      },
    };
    expect(await readLegacyIptablesDrops(runner, namedNetns("n1"), OURS)).toHaveLength(3);
    expect(calls).toEqual([
      ["nsenter", "--net=/run/netns/n1", "--", "iptables-legacy-save"],
      ["nsenter", "--net=/run/netns/n1", "--", "ip6tables-legacy-save"],
    ]);
  });
});
