import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createProcessRunner } from "../kernel/runner.js";
import { createPolicyState } from "../policy-state.js";
import { createNetnsLab, type NetnsLab } from "../testing/netns-lab.js";
import { findShadowingChains, margayHooks, readLegacyIptablesDrops, readShadowingChains } from "./foreign.js";
import { type NftRenderOptions, renderFull, renderRuleset } from "./render.js";

// Our real table (as the driver renders it) in a scratch namespace, beside a foreign `inet filter` table
// whose forward chain drops by policy. Set MARGAY_RECORD_NFT=1 to rewrite testdata/*.json from these runs
// (the unit tests of findShadowingChains read them).
const OPTIONS: NftRenderOptions = {
  table: "margay",
  workloadPrefixes: ["mgy"],
  marks: { allow: 0x10000, pass: 0x20000 },
  endpointToHost: "accept",
  priority: 0,
};
const OURS = margayHooks(OPTIONS);
const runner = createProcessRunner();
const record = process.env.MARGAY_RECORD_NFT === "1";

const foreign = (prio: number) => `table inet filter {
  chain forward {
    type filter hook forward priority ${prio}; policy drop;
  }
}
`;

let lab: NetnsLab;
beforeAll(() => {
  lab = createNetnsLab("fgn");
});
afterAll(async () => {
  await lab?.close();
});

async function setUp(role: string, prio: number, extra = "") {
  const ns = await lab.add(role);
  const ours = renderFull(renderRuleset(createPolicyState(), [], OPTIONS), OPTIONS);
  await lab.exec(ns, ["nft", "-f", "-"], ours);
  await lab.exec(ns, ["nft", "-f", "-"], foreign(prio) + extra);
  return ns;
}

describe("foreign nftables chains beside margay's table (netns)", () => {
  it("reports an inet filter forward chain with policy drop at priority -10", async () => {
    const ns = await setUp("before", -10);
    const found = await readShadowingChains(runner, ns, OURS);
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
    if (record) {
      const json = await lab.exec(ns, ["nft", "-j", "list", "ruleset"]);
      await writeFile(join(import.meta.dirname, "testdata", "margay-and-inet-filter-m10.json"), json);
    }
  });

  it("does not report the same chain at priority 10 (it runs after ours)", async () => {
    const ns = await setUp("after", 10);
    expect(await readShadowingChains(runner, ns, OURS)).toEqual([]);
    if (record) {
      const json = await lab.exec(ns, ["nft", "-j", "list", "ruleset"]);
      await writeFile(join(import.meta.dirname, "testdata", "margay-and-inet-filter-p10.json"), json);
    }
  });

  it("reports iptables-nft, kube-proxy-style and same-priority chains; ignores bridge and accept-only ones", async () => {
    const ns = await setUp(
      "mixed",
      10,
      `table ip filter {
  chain FORWARD {
    type filter hook forward priority 0; policy accept;
    ip saddr 10.9.0.0/16 counter drop
  }
}
table ip kube-proxy {
  chain filter-forward {
    type filter hook forward priority -110; policy accept;
    ct state new jump service-endpoints-check
  }
  chain service-endpoints-check {
    ip daddr 10.96.0.10 tcp dport 53 reject
  }
  chain nat-prerouting {
    type nat hook prerouting priority dstnat; policy accept;
  }
}
table ip6 open {
  chain input {
    type filter hook input priority -50; policy accept;
    tcp dport 22 accept
  }
}
table bridge br {
  chain bfwd {
    type filter hook forward priority -200; policy drop;
  }
}
`,
    );
    const json = await lab.exec(ns, ["nft", "-j", "list", "ruleset"]);
    if (record) await writeFile(join(import.meta.dirname, "testdata", "mixed-foreign.json"), json);
    const found = findShadowingChains(JSON.parse(json), OURS);
    expect(found.map((f) => [`${f.family}/${f.table}/${f.chain}`, f.order, f.why, f.owner])).toEqual([
      ["ip/filter/FORWARD", "same-priority", "1 rule that drops", "iptables (nft backend)"],
      ["ip/kube-proxy/filter-forward", "before", "1 rule that drops", "kube-proxy (nftables mode)"],
    ]);
  });

  it("reports iptables-legacy filter drops nft cannot see, and none in a namespace without them", async () => {
    const ns = await lab.add("legacy");
    expect(await readLegacyIptablesDrops(runner, ns, OURS)).toEqual([]);
    await lab.exec(ns, ["iptables-legacy", "-P", "FORWARD", "DROP"]);
    await lab.exec(ns, ["iptables-legacy", "-A", "INPUT", "-s", "10.1.0.0/16", "-j", "DROP"]);
    const found = await readLegacyIptablesDrops(runner, ns, OURS);
    expect(found.map((f) => [f.family, f.chain, f.why])).toEqual([
      ["ip", "INPUT", "1 rule that drops"],
      ["ip", "FORWARD", "policy drop"],
    ]);
    // nft does not list legacy tables: only the legacy reader sees them.
    expect(await readShadowingChains(runner, ns, OURS)).toEqual([]);
  });
});
