import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import type { KernelCallOptions } from "../kernel/iproute.js";
import { type NetnsHandle, inNetns, netnsLabel } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import type { NftRenderOptions } from "./render.js";

/** One netfilter hook a base chain of ours sits on, with its numeric priority. */
export interface NftHookPriority {
  /** Netfilter hook (`prerouting`, `input`, `forward`, `output`, `postrouting`). */
  readonly hook: string;
  /** Numeric priority (`raw` = -300, `dstnat` = -100, `filter` = 0, `srcnat` = 100). */
  readonly priority: number;
}

/** Our table and its base chains, as {@link findShadowingChains} compares foreign chains with. */
export interface OwnNftTable {
  /** Our table name. */
  readonly table: string;
  /** Our table family. */
  readonly family: "inet";
  /** Our base chains' hooks and priorities. */
  readonly hooks: readonly NftHookPriority[];
}

/**
 * A base chain of another table that runs on one of our hooks no later than ours and can drop: it may
 * drop traffic our policy allows. Reported, never worked around.
 */
export interface ForeignChainFinding {
  /** Family of the foreign table (`inet`, `ip`, `ip6`). */
  readonly family: string;
  /** Foreign table name. */
  readonly table: string;
  /** Foreign base chain name. */
  readonly chain: string;
  /** Hook shared with one of our base chains. */
  readonly hook: string;
  /** The foreign chain's priority. */
  readonly priority: number;
  /** The highest priority of ours on that hook it runs before (or beside, when equal). */
  readonly ourPriority: number;
  /** `before` (lower number) or `same-priority` (equal: the kernel's order between them is undefined). */
  readonly order: "before" | "same-priority";
  /** Why it can drop: `policy drop` and/or `N rules that drop` (rules in the chain or chains it jumps to). */
  readonly why: string;
  /** A recognisable owner when the table name is a known one (kube-proxy, iptables-nft, firewalld). */
  readonly owner?: string;
}

/**
 * Numeric priorities of nft's named priorities for the inet/ip/ip6 families (nft(8), "PRIORITY TABLE").
 * nft prints numbers in `-j` output; our own render uses the names.
 */
const NAMED_PRIORITY: Readonly<Record<string, number>> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};

/**
 * Our base chains' hooks and priorities, read from the renderer's settings (see `renderBase` in
 * render.ts): raw-prerouting/raw-output at `raw`, prednat at `dstnat - 10`, forward/input/output at
 * `options.priority`, the masquerade chain at `srcnat`.
 */
export function margayHooks(options: Pick<NftRenderOptions, "table" | "priority">): OwnNftTable {
  const p = options.priority;
  return {
    table: options.table,
    family: "inet",
    hooks: [
      { hook: "prerouting", priority: NAMED_PRIORITY.raw! },
      { hook: "output", priority: NAMED_PRIORITY.raw! },
      { hook: "prerouting", priority: NAMED_PRIORITY.dstnat! - 10 },
      { hook: "forward", priority: p },
      { hook: "input", priority: p },
      { hook: "output", priority: p },
      { hook: "postrouting", priority: NAMED_PRIORITY.srcnat! },
    ],
  };
}

/** Families whose base chains see the packets an `inet` table sees (bridge and netdev hooks differ). */
const SAME_PACKETS: ReadonlySet<string> = new Set(["inet", "ip", "ip6"]);

/** Known table names → who made them. */
function ownerOf(family: string, table: string): string | undefined {
  if (table === "kube-proxy" && (family === "ip" || family === "ip6")) return "kube-proxy (nftables mode)";
  if (
    (family === "ip" || family === "ip6") &&
    ["filter", "nat", "mangle", "raw", "security"].includes(table)
  ) {
    return "iptables (nft backend)";
  }
  if (family === "inet" && table === "firewalld") return "firewalld";
  return undefined;
}

interface ChainInfo {
  readonly family: string;
  readonly table: string;
  readonly name: string;
  readonly hook?: string;
  readonly prio?: number;
  readonly policy?: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Walks a rule's expressions: whether it has a drop/reject verdict, and the chains it jumps/goes to. */
function scanExpr(v: unknown, out: { drops: boolean; targets: Set<string> }): void {
  if (Array.isArray(v)) {
    for (const x of v) scanExpr(x, out);
    return;
  }
  if (!isRecord(v)) return;
  for (const [k, x] of Object.entries(v)) {
    if (k === "drop" || k === "reject") out.drops = true;
    if ((k === "jump" || k === "goto") && isRecord(x) && typeof x.target === "string")
      out.targets.add(x.target);
    scanExpr(x, out);
  }
}

function invalid(message: string, details: Record<string, unknown> = {}): DataplaneError {
  return new DataplaneError(DataplaneErrorCode.InvalidUpdate, message, { details });
}

/**
 * The base chains of other tables that can drop traffic before our base chains see it (pure: reads the
 * output of `nft -j list ruleset`). A foreign chain counts when its family sees the same packets (`inet`,
 * `ip`, `ip6`), it hooks where one of ours does at a lower or equal priority (equal: the kernel does not
 * define the order), and it can drop (policy drop, or drop/reject rules in it or in chains it jumps to).
 * An `accept` in another base chain does not end evaluation across base chains, so a foreign chain that
 * only accepts can neither shadow our drops nor bypass them, and is not reported. Named verdict maps are
 * not followed (their targets are not in the rule). Throws `invalid-update` when `ruleset` is not nft JSON.
 */
export function findShadowingChains(ruleset: unknown, ours: OwnNftTable): ForeignChainFinding[] {
  if (!isRecord(ruleset) || !Array.isArray(ruleset.nftables)) {
    throw invalid("not `nft -j list ruleset` output: no nftables array");
  }
  const chains: ChainInfo[] = [];
  const rules = new Map<string, { drops: number; targets: Set<string> }>();
  const key = (family: string, table: string, chain: string) => `${family}\u0000${table}\u0000${chain}`;
  for (const item of ruleset.nftables) {
    if (!isRecord(item)) continue;
    const c = item.chain;
    if (isRecord(c)) {
      if (typeof c.family !== "string" || typeof c.table !== "string" || typeof c.name !== "string") {
        throw invalid("nft chain object without family, table or name", { chain: c });
      }
      chains.push({
        family: c.family,
        table: c.table,
        name: c.name,
        ...(typeof c.hook === "string" ? { hook: c.hook } : {}),
        ...(typeof c.prio === "number" ? { prio: c.prio } : {}),
        ...(typeof c.policy === "string" ? { policy: c.policy } : {}),
      });
    }
    const r = item.rule;
    if (
      isRecord(r) &&
      typeof r.family === "string" &&
      typeof r.table === "string" &&
      typeof r.chain === "string"
    ) {
      const k = key(r.family, r.table, r.chain);
      const acc = rules.get(k) ?? { drops: 0, targets: new Set<string>() };
      const s = { drops: false, targets: acc.targets };
      scanExpr(r.expr, s);
      if (s.drops) acc.drops++;
      rules.set(k, acc);
    }
  }
  const ourMax = new Map<string, number>();
  for (const h of ours.hooks) ourMax.set(h.hook, Math.max(ourMax.get(h.hook) ?? h.priority, h.priority));

  // Drop rules in a base chain and in every chain reachable from it by jump/goto (same table).
  const dropsFrom = (c: ChainInfo): number => {
    const seen = new Set<string>();
    let n = 0;
    const visit = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      const r = rules.get(key(c.family, c.table, name));
      if (r === undefined) return;
      n += r.drops;
      for (const t of r.targets) visit(t);
    };
    visit(c.name);
    return n;
  };

  const findings: ForeignChainFinding[] = [];
  for (const c of chains) {
    if (c.hook === undefined || c.prio === undefined) continue;
    if (c.family === ours.family && c.table === ours.table) continue;
    if (!SAME_PACKETS.has(c.family)) continue;
    const mine = ourMax.get(c.hook);
    if (mine === undefined || c.prio > mine) continue;
    const reasons: string[] = [];
    if (c.policy === "drop") reasons.push("policy drop");
    const n = dropsFrom(c);
    if (n > 0) reasons.push(n === 1 ? "1 rule that drops" : `${n} rules that drop`);
    if (reasons.length === 0) continue;
    const owner = ownerOf(c.family, c.table);
    findings.push({
      family: c.family,
      table: c.table,
      chain: c.name,
      hook: c.hook,
      priority: c.prio,
      ourPriority: mine,
      order: c.prio < mine ? "before" : "same-priority",
      why: reasons.join(", "),
      ...(owner !== undefined ? { owner } : {}),
    });
  }
  return findings;
}

/** Runs `nft -j list ruleset` in `ns` and returns {@link findShadowingChains} of it. */
export async function readShadowingChains(
  runner: CommandRunner,
  ns: NetnsHandle,
  ours: OwnNftTable,
  options: KernelCallOptions = {},
): Promise<ForeignChainFinding[]> {
  const argv = inNetns(ns, ["nft", "-j", "list", "ruleset"]);
  const res = await runner.run(argv, { signal: options.signal });
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.stdout === "" ? '{"nftables":[]}' : res.stdout);
  } catch (cause) {
    throw new DataplaneError(DataplaneErrorCode.CommandFailed, "nft -j list ruleset printed no JSON", {
      cause,
      details: { argv, netns: netnsLabel(ns) },
    });
  }
  return findShadowingChains(parsed, ours);
}

/** A one-line human description of a finding, for logs and status. */
export function describeFinding(f: ForeignChainFinding): string {
  const when = f.order === "before" ? "runs before" : "runs at the same priority as";
  const who = f.owner !== undefined ? ` (${f.owner})` : "";
  return `foreign nftables chain ${f.family}/${f.table}/${f.chain}${who} (hook ${f.hook}, priority ${f.priority}, ${f.why}) ${when} margay's and may drop traffic margay allows`;
}

/** The built-in chains of iptables' filter table and the hook each sits on (priority `filter`, 0). */
const LEGACY_FILTER_HOOKS: Readonly<Record<string, string>> = {
  INPUT: "input",
  FORWARD: "forward",
  OUTPUT: "output",
};

/** The owner named on iptables-legacy findings. */
export const IPTABLES_LEGACY_OWNER = "iptables-legacy rules present: not visible to nftables ordering";

/**
 * Findings for the `filter` table of `iptables-legacy-save` (or `ip6tables-legacy-save`) output (pure).
 * Legacy xtables hook their filter chains at priority 0, the same as our filter chains (undefined order),
 * and nft cannot list them, so each built-in chain with policy DROP or DROP/REJECT rules (in it or in
 * user chains it jumps or goes to) is one `same-priority` finding with {@link IPTABLES_LEGACY_OWNER}.
 */
export function findLegacyIptablesDrops(
  save: string,
  family: "ip" | "ip6",
  ours: OwnNftTable,
): ForeignChainFinding[] {
  const policy = new Map<string, string>();
  const rules = new Map<string, { drops: number; targets: Set<string> }>();
  let table: string | undefined;
  for (const raw of save.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) table = line.slice(1);
    if (table !== "filter") continue;
    if (line.startsWith(":")) {
      const [name, pol] = line.slice(1).split(/\s+/);
      if (name !== undefined && pol !== undefined) policy.set(name, pol);
    } else if (line.startsWith("-A ")) {
      const words = line.split(/\s+/);
      const chain = words[1] ?? "";
      const acc = rules.get(chain) ?? { drops: 0, targets: new Set<string>() };
      for (let i = 2; i < words.length - 1; i++) {
        if (words[i] !== "-j" && words[i] !== "-g") continue;
        const target = words[i + 1]!;
        if (target === "DROP" || target === "REJECT") acc.drops++;
        else acc.targets.add(target);
      }
      rules.set(chain, acc);
    }
  }
  const ourMax = new Map<string, number>();
  for (const h of ours.hooks) ourMax.set(h.hook, Math.max(ourMax.get(h.hook) ?? h.priority, h.priority));
  const findings: ForeignChainFinding[] = [];
  for (const [chain, hook] of Object.entries(LEGACY_FILTER_HOOKS)) {
    const mine = ourMax.get(hook);
    if (mine === undefined || mine < 0 || !policy.has(chain)) continue;
    const seen = new Set<string>();
    let n = 0;
    const visit = (name: string) => {
      if (seen.has(name)) return;
      seen.add(name);
      const r = rules.get(name);
      if (r === undefined) return;
      n += r.drops;
      for (const t of r.targets) visit(t);
    };
    visit(chain);
    const reasons: string[] = [];
    if (policy.get(chain) === "DROP") reasons.push("policy drop");
    if (n > 0) reasons.push(n === 1 ? "1 rule that drops" : `${n} rules that drop`);
    if (reasons.length === 0) continue;
    findings.push({
      family,
      table: "filter",
      chain,
      hook,
      priority: 0,
      ourPriority: mine,
      order: mine === 0 ? "same-priority" : "before",
      why: reasons.join(", "),
      owner: IPTABLES_LEGACY_OWNER,
    });
  }
  return findings;
}

/**
 * Runs `iptables-legacy-save` and `ip6tables-legacy-save` in `ns` (no `-t`: naming a table would load
 * it) and returns {@link findLegacyIptablesDrops} of each. A missing or failing tool counts as no legacy
 * rules (nodes without iptables-legacy are the common case).
 */
export async function readLegacyIptablesDrops(
  runner: CommandRunner,
  ns: NetnsHandle,
  ours: OwnNftTable,
  options: KernelCallOptions = {},
): Promise<ForeignChainFinding[]> {
  const out: ForeignChainFinding[] = [];
  for (const [tool, family] of [
    ["iptables-legacy-save", "ip"],
    ["ip6tables-legacy-save", "ip6"],
  ] as const) {
    let stdout: string;
    try {
      stdout = (await runner.run(inNetns(ns, [tool]), { signal: options.signal })).stdout;
    } catch (e) {
      if (options.signal?.aborted) throw e;
      continue;
    }
    out.push(...findLegacyIptablesDrops(stdout, family, ours));
  }
  return out;
}
