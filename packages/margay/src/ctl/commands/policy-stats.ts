/**
 * `policy stats`: per-rule packet and byte counters of the host's dataplane. It reads the `inet margay`
 * table as JSON (`nft -j list table inet margay`, inside `--netns` when given) and maps each rule of a
 * policy or profile chain back to tier / policy / direction / rule index. The mapping is recomputed from
 * the datastore with the same calculation graph and renderer the agent uses (`@margay/policy`'s
 * `createCalcGraph`, `@margay/dataplane`'s `nftNames` and `renderRule`): chain names are hashes of the
 * policy ids, and one rule renders to several nft rules when it spans both families or OR-ed ports, so
 * the nft rules of a chain are grouped by how many lines each calculated rule renders to. A chain whose
 * nft rule count disagrees with the datastore (the agent has not applied the latest change) is reported
 * as out of sync, its counters unassigned to rules.
 *
 * @packageDocumentation
 */

import { type NftMarks, nftNames, renderRule } from "@margay/dataplane";
import type { RenderedRule } from "@margay/dataplane-contract";
import { createCalcGraph } from "@margay/policy";
import type { CommandContext } from "../context.js";
import { CtlError, CtlErrorCode } from "../errors.js";
import { isNetnsName, runHost } from "../host.js";
import { json, renderTable } from "../output.js";
import { loadModel } from "./policy.js";

// Only the number of lines a rule renders to matters here, which the mark values do not change.
const MARKS: NftMarks = { allow: 0x10000, pass: 0x20000 };

/** One row of `policy stats`. */
export interface RuleStats {
  /** Tier (profiles: `profile`). */
  tier: string;
  /** `namespace/name` of a namespaced policy, the name of a global one, or the profile's name. */
  policy: string;
  /** `ingress` or `egress`. */
  direction: "ingress" | "egress";
  /** Index of the rule in the policy's rule list (0-based), or null when the chain is out of sync. */
  rule: number | null;
  /** The rule's action (allow, deny, pass, log), when known. */
  action: string | null;
  /** Packets counted. */
  packets: number;
  /** Bytes counted. */
  bytes: number;
  /** The nft chain. */
  chain: string;
}

interface ChainOwner {
  tier: string;
  policy: string;
  direction: "ingress" | "egress";
  rules: readonly RenderedRule[];
}

type NftRule = { chain?: string; handle?: number; expr?: unknown[] };

/** nft JSON (`nft -j list table`) → rules of each chain, in order. */
export function nftRulesByChain(text: string): Map<string, NftRule[]> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CtlError(CtlErrorCode.Dataplane, "nft -j list: output is not JSON", {}, e);
  }
  const items = (doc as { nftables?: unknown }).nftables;
  if (!Array.isArray(items)) throw new CtlError(CtlErrorCode.Dataplane, "nft -j list: no nftables array");
  const out = new Map<string, NftRule[]>();
  for (const it of items) {
    const chain = (it as { chain?: { name?: string } }).chain;
    if (chain?.name !== undefined && !out.has(chain.name)) out.set(chain.name, []);
    const rule = (it as { rule?: NftRule }).rule;
    if (rule?.chain === undefined) continue;
    const list = out.get(rule.chain) ?? [];
    list.push(rule);
    out.set(rule.chain, list);
  }
  return out;
}

/** The `counter` statement of an nft JSON rule, if it has one. */
export function ruleCounter(rule: NftRule): { packets: number; bytes: number } | undefined {
  for (const e of rule.expr ?? []) {
    const c = (e as { counter?: { packets?: number; bytes?: number } }).counter;
    if (c !== undefined && typeof c === "object") return { packets: c.packets ?? 0, bytes: c.bytes ?? 0 };
  }
  return undefined;
}

/** Maps the chains of `byChain` owned by a policy or profile to per-rule counters. */
export function ruleStats(
  byChain: ReadonlyMap<string, readonly NftRule[]>,
  owners: ReadonlyMap<string, ChainOwner>,
): { rows: RuleStats[]; counted: number; outOfSync: string[] } {
  const rows: RuleStats[] = [];
  const outOfSync: string[] = [];
  let counted = 0;
  for (const [chain, owner] of owners) {
    const nft = byChain.get(chain);
    if (nft === undefined) continue;
    const widths = owner.rules.map((r) => renderRule(r, MARKS).length);
    const total = widths.reduce((a, b) => a + b, 0);
    const counters = nft.map(ruleCounter);
    counted += counters.filter((c) => c !== undefined).length;
    const base = { tier: owner.tier, policy: owner.policy, direction: owner.direction, chain };
    if (total !== nft.length) {
      outOfSync.push(chain);
      rows.push({
        ...base,
        rule: null,
        action: null,
        packets: counters.reduce((a, c) => a + (c?.packets ?? 0), 0),
        bytes: counters.reduce((a, c) => a + (c?.bytes ?? 0), 0),
      });
      continue;
    }
    let at = 0;
    owner.rules.forEach((r, i) => {
      let packets = 0;
      let bytes = 0;
      for (const c of counters.slice(at, at + (widths[i] ?? 0))) {
        packets += c?.packets ?? 0;
        bytes += c?.bytes ?? 0;
      }
      at += widths[i] ?? 0;
      rows.push({ ...base, rule: i, action: r.action, packets, bytes });
    });
  }
  rows.sort(
    (a, b) =>
      a.tier.localeCompare(b.tier) ||
      a.policy.localeCompare(b.policy) ||
      a.direction.localeCompare(b.direction) ||
      (a.rule ?? -1) - (b.rule ?? -1),
  );
  return { rows, counted, outOfSync };
}

/** Options of `policy stats`. */
export interface PolicyStatsOptions {
  netns?: string | undefined;
  output?: string | undefined;
  all?: boolean | undefined;
}

/** `policy stats [--netns NAME] [--all] [-o table|json]`. */
export async function policyStats(ctx: CommandContext, opts: PolicyStatsOptions): Promise<void> {
  const output = opts.output ?? "table";
  if (output !== "table" && output !== "json")
    throw new CtlError(CtlErrorCode.Usage, `-o: table or json, got ${JSON.stringify(output)}`);
  if (opts.netns !== undefined && !isNetnsName(opts.netns))
    throw new CtlError(
      CtlErrorCode.Usage,
      `--netns: a network namespace name, got ${JSON.stringify(opts.netns)}`,
    );
  const nft = await runHost(["nft", "-j", "list", "table", "inet", "margay"], {
    netns: opts.netns,
    env: ctx.io.env,
  });
  if (nft.code !== 0)
    throw new CtlError(
      CtlErrorCode.Dataplane,
      `nft -j list table inet margay${opts.netns === undefined ? "" : ` (netns ${opts.netns})`}: ${
        nft.stderr.trim().split("\n")[0] || `exit ${nft.code ?? "signal"}`
      } (run as root on the node)`,
    );
  const byChain = nftRulesByChain(nft.stdout);

  // The same calculation the agent runs, cluster-wide: every active policy and profile, by chain name.
  const { resources, options } = await loadModel(ctx, []);
  const graph = createCalcGraph({
    failsafeInbound: options.failsafeInbound,
    failsafeOutbound: options.failsafeOutbound,
  });
  for (const r of resources) graph.upsert(r);
  graph.markInSync();
  const owners = new Map<string, ChainOwner>();
  for (const u of graph.flush()) {
    if (u.kind === "active-policy-update") {
      const policy = u.namespace === undefined ? u.name : `${u.namespace}/${u.name}`;
      owners.set(nftNames.policy(u.id, "in"), {
        tier: u.tier,
        policy,
        direction: "ingress",
        rules: u.inbound,
      });
      owners.set(nftNames.policy(u.id, "out"), {
        tier: u.tier,
        policy,
        direction: "egress",
        rules: u.outbound,
      });
    } else if (u.kind === "active-profile-update") {
      owners.set(nftNames.profile(u.id, "in"), {
        tier: "profile",
        policy: u.id,
        direction: "ingress",
        rules: u.inbound,
      });
      owners.set(nftNames.profile(u.id, "out"), {
        tier: "profile",
        policy: u.id,
        direction: "egress",
        rules: u.outbound,
      });
    }
  }
  const { rows, counted, outOfSync } = ruleStats(byChain, owners);
  if (rows.length === 0)
    throw new CtlError(
      CtlErrorCode.NotFound,
      "no policy or profile of the datastore has a chain in this host's inet margay table (no local endpoint uses one)",
    );
  if (counted === 0)
    throw new CtlError(
      CtlErrorCode.Dataplane,
      "the policy rules of the inet margay table carry no nft counter statement, so there is nothing to read (the dataplane renders them without counters)",
      { chains: rows.length },
    );
  const shown = opts.all ? rows : rows.filter((r) => r.packets > 0 || r.rule === null);
  for (const c of outOfSync)
    ctx.io.err(`warning: chain ${c} does not match the datastore's rules (agent not in sync); totals only\n`);
  if (output === "json") return ctx.io.out(json(shown));
  if (shown.length === 0) return ctx.io.err("No rule has matched a packet (--all lists every rule).\n");
  ctx.io.out(
    renderTable(
      ["TIER", "POLICY", "DIRECTION", "RULE", "ACTION", "PACKETS", "BYTES"],
      shown.map((r) => [
        r.tier,
        r.policy,
        r.direction,
        r.rule === null ? "?" : String(r.rule),
        r.action ?? "?",
        String(r.packets),
        String(r.bytes),
      ]),
      ctx.io.style,
    ),
  );
}
