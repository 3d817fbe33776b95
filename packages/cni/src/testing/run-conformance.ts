/**
 * The conformance kit: runs a plugin chain through the scenarios of the specification in fresh network
 * namespaces and reports pass / fail / not-applicable per scenario.
 *
 * @packageDocumentation
 */

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isCniExecError } from "../runtime/exec-error.js";
import { DEFAULT_PLUGIN_ENV, execPlugin, findPlugin, parseJsonOutput } from "../runtime/exec-plugin.js";
import { type CniRuntime, createCniRuntime, pluginConfigFor, type RuntimeConf } from "../runtime/runtime.js";
import { validateNetConfList } from "../spec/config.js";
import { isCniError, parseErrorObject } from "../spec/errors.js";
import { parseResult } from "../spec/result.js";
import type { CniResult, NetConfList } from "../spec/types.js";
import { VALID_ATTACHMENTS_KEY } from "../spec/types.js";
import { highestVersion, isVersionString, SUPPORTED_CNI_VERSIONS, versionAtLeast } from "../spec/version.js";
import { type BadInputCase, runBadInput, SPEC_BAD_INPUTS, validAddInvocation } from "./bad-input.js";
import { createNetns, netnsLinks, randomContainerId, type TestNetns } from "./netns.js";
import { rawExec } from "./raw-exec.js";
import {
  ALL_SCENARIOS,
  type CheckReport,
  type ConformanceReport,
  ScenarioId,
  type ScenarioOutcome,
  type ScenarioReport,
} from "./report.js";

/** Options of {@link runConformance}. */
export interface CniConformanceOptions {
  /**
   * The chain under test. The kit runs it at the highest version listed (`cniVersion`, `cniVersions`)
   * that it and every plugin of the chain support.
   */
  config: NetConfList;
  /** `CNI_PATH`: where the plugins are. */
  path: readonly string[];
  /**
   * Lists the addresses the IPAM currently holds (e.g. {@link hostLocalAllocations}), so the kit can
   * check that nothing stays allocated. `add-check-del` fails if it does not list the addresses an ADD
   * returned (an inspector looking in the wrong place would prove nothing). Default: not inspectable
   * (only interfaces are checked).
   */
  allocations?: (() => Promise<readonly string[]>) | undefined;
  /** Scenarios to run. Default: all. */
  scenarios?: readonly ScenarioId[] | undefined;
  /** Parallel ADDs in `concurrent-adds`. Default: 4. */
  concurrency?: number | undefined;
  /** Per-exec timeout. Default: 60 000 ms. */
  timeoutMs?: number | undefined;
  /** Base environment of the plugins. Default: a standard `PATH`. */
  env?: Readonly<Record<string, string>> | undefined;
  /** Prefix of namespace names. Default: `mgcni`. */
  netnsPrefix?: string | undefined;
  /** Malformed inputs for `bad-input`. Default: {@link SPEC_BAD_INPUTS}. */
  badInputs?: readonly BadInputCase[] | undefined;
  /** Interface name used inside the namespaces. Default: `eth0`. */
  ifname?: string | undefined;
  /**
   * Run the plugins inside a namespace the kit creates to stand in for the host (through
   * `ip netns exec`), so bridges, host-side veths, routes and iptables rules never touch the real host.
   * Default: true.
   */
  isolateHost?: boolean | undefined;
}

/**
 * @deprecated Use {@link CniConformanceOptions}; `ConformanceOptions` was also the name of the datastore
 * suite's options (`@margay/datastore/conformance`), a different thing. Removed in the next minor release.
 */
export type ConformanceOptions = CniConformanceOptions;

interface Ctx {
  o: CniConformanceOptions;
  list: NetConfList;
  version: string;
  runtime: CniRuntime;
  ifname: string;
  supported: Record<string, string[]>;
  prefix: string;
  env: Readonly<Record<string, string>>;
  launcher: readonly string[] | undefined;
}

type Verdict = { outcome: ScenarioOutcome; reason: string; checks?: CheckReport[] };

const pass = (reason: string, checks?: CheckReport[]): Verdict =>
  checks ? { outcome: "pass", reason, checks } : { outcome: "pass", reason };
const fail = (reason: string, checks?: CheckReport[]): Verdict =>
  checks ? { outcome: "fail", reason, checks } : { outcome: "fail", reason };
const na = (reason: string): Verdict => ({ outcome: "not-applicable", reason });

function describeError(e: unknown): string {
  if (isCniError(e)) return `CNI error ${e.cniCode}: ${e.message}${e.details ? ` (${e.details})` : ""}`;
  if (isCniExecError(e))
    return `${e.code}: ${e.message}${e.details.stderr ? ` [stderr: ${String(e.details.stderr).trim().slice(0, 200)}]` : ""}`;
  return e instanceof Error ? e.message : String(e);
}

function sorted(a: readonly string[]): string[] {
  return [...a].sort();
}

function hostOf(cidr: string): string {
  return cidr.slice(0, cidr.lastIndexOf("/"));
}

async function allocs(ctx: Ctx): Promise<string[] | undefined> {
  return ctx.o.allocations ? sorted(await ctx.o.allocations()) : undefined;
}

function diffAllocs(before: string[] | undefined, after: string[] | undefined): string | undefined {
  if (before === undefined || after === undefined) return undefined;
  if (before.join(",") === after.join(",")) return undefined;
  const leaked = after.filter((a) => !before.includes(a));
  return leaked.length > 0
    ? `addresses left allocated: ${leaked.join(", ")}`
    : `allocations changed: ${before.join(",")} → ${after.join(",")}`;
}

/** Checks that the sandbox interface exists in the namespace with every sandbox address of the result. */
export async function verifyAttachment(
  ns: TestNetns,
  result: CniResult,
  ifname: string,
): Promise<string | undefined> {
  const links = await netnsLinks(ns.name);
  const link = links.find((l) => l.ifname === ifname);
  if (link === undefined) return `interface ${ifname} not found in ${ns.name}`;
  const ifaces = result.interfaces ?? [];
  for (const ip of result.ips ?? []) {
    const iface = ip.interface === undefined ? undefined : ifaces[ip.interface];
    if (iface !== undefined && (iface.sandbox === undefined || iface.sandbox === "" || iface.name !== ifname))
      continue;
    const [addr, len] = [hostOf(ip.address), Number(ip.address.slice(ip.address.lastIndexOf("/") + 1))];
    const has = link.addresses.some((a) => a.local === addr && a.prefixlen === len);
    if (!has) return `address ${ip.address} of the result is not on ${ifname} in ${ns.name}`;
  }
  return undefined;
}

async function leftovers(ns: TestNetns): Promise<string | undefined> {
  const links = (await netnsLinks(ns.name)).filter((l) => l.linkType !== "loopback");
  return links.length > 0
    ? `interfaces left in ${ns.name}: ${links.map((l) => l.ifname).join(", ")}`
    : undefined;
}

function rt(ctx: Ctx, ns: TestNetns | { path: string }, containerId = randomContainerId()): RuntimeConf {
  return { containerId, netns: ns.path, ifname: ctx.ifname };
}

function sandboxIps(result: CniResult): string[] {
  return (result.ips ?? []).map((i) => hostOf(i.address));
}

const scenarios: Record<ScenarioId, (ctx: Ctx) => Promise<Verdict>> = {
  async [ScenarioId.Version](ctx) {
    const checks: CheckReport[] = [];
    for (const plugin of ctx.list.plugins) {
      const vs = ctx.supported[plugin.type] ?? [];
      const ok = vs.length > 0 && vs.every(isVersionString);
      checks.push({ name: plugin.type, ok, observed: ok ? vs.join(" ") : "no valid VERSION output" });
    }
    const bad = checks.filter((c) => !c.ok);
    return bad.length === 0
      ? pass(`every plugin answers VERSION; tested at ${ctx.version}`, checks)
      : fail(`invalid VERSION output from ${bad.map((c) => c.name).join(", ")}`, checks);
  },

  async [ScenarioId.AddCheckDel](ctx) {
    await using ns = await createNetns(ctx.prefix);
    const before = await allocs(ctx);
    const conf = rt(ctx, ns);
    const result = await ctx.runtime.addNetworkList(ctx.list, conf);
    if ((result.ips ?? []).length === 0) return fail("ADD result has no IP addresses");
    const bad = await verifyAttachment(ns, result, ctx.ifname);
    if (bad) return fail(`after ADD: ${bad}`);
    if (before !== undefined) {
      // An inspector that looks in the wrong place would make every "released" verdict vacuous.
      const held = (await allocs(ctx)) ?? [];
      const unseen = sandboxIps(result).filter((a) => !held.includes(a));
      if (unseen.length > 0)
        return fail(`after ADD: the allocations inspector does not list ${unseen.join(", ")}`);
    }
    let checked = "CHECK skipped (disableCheck)";
    if (ctx.list.disableCheck !== true) {
      await ctx.runtime.checkNetworkList(ctx.list, conf);
      checked = "CHECK ok";
    }
    await ctx.runtime.delNetworkList(ctx.list, conf);
    const left = await leftovers(ns);
    if (left) return fail(`after DEL: ${left}`);
    const leak = diffAllocs(before, await allocs(ctx));
    if (leak) return fail(`after DEL: ${leak}`);
    return pass(
      `ADD put ${sandboxIps(result).join(", ")} on ${ctx.ifname}; ${checked}; DEL removed it${before ? " and released the address" : ""}`,
    );
  },

  async [ScenarioId.DelWithoutAdd](ctx) {
    await using ns = await createNetns(ctx.prefix);
    const before = await allocs(ctx);
    await ctx.runtime.delNetworkList(ctx.list, rt(ctx, ns));
    const leak = diffAllocs(before, await allocs(ctx));
    return leak ? fail(leak) : pass("DEL of an unknown attachment succeeds");
  },

  async [ScenarioId.DelTwice](ctx) {
    await using ns = await createNetns(ctx.prefix);
    const before = await allocs(ctx);
    const conf = rt(ctx, ns);
    await ctx.runtime.addNetworkList(ctx.list, conf);
    await ctx.runtime.delNetworkList(ctx.list, conf);
    await ctx.runtime.delNetworkList(ctx.list, conf);
    const left = (await leftovers(ns)) ?? diffAllocs(before, await allocs(ctx));
    return left
      ? fail(left)
      : pass(
          before === undefined
            ? "second DEL succeeds and leaves no interface (allocations not inspectable)"
            : "second DEL succeeds and changes nothing",
        );
  },

  async [ScenarioId.DelAfterNetnsGone](ctx) {
    const ns = await createNetns(ctx.prefix);
    const before = await allocs(ctx);
    const conf = rt(ctx, ns);
    try {
      await ctx.runtime.addNetworkList(ctx.list, conf);
    } finally {
      await ns.close();
    }
    await ctx.runtime.delNetworkList(ctx.list, conf);
    const leak = diffAllocs(before, await allocs(ctx));
    return leak
      ? fail(leak)
      : pass(
          `DEL with CNI_NETNS of a deleted namespace succeeds${before ? " and releases the address" : ""}`,
        );
  },

  async [ScenarioId.BadInput](ctx) {
    await using ns = await createNetns(ctx.prefix);
    const before = await allocs(ctx);
    const plugin = ctx.list.plugins[0]!;
    const bin = await findPlugin(plugin.type, ctx.o.path);
    const conf = pluginConfigFor(ctx.list, plugin, ctx.version, undefined, undefined);
    const valid = validAddInvocation(conf, {
      netns: ns.path,
      path: ctx.o.path,
      ifname: ctx.ifname,
      env: ctx.env,
    });
    const checks: CheckReport[] = [];
    for (const c of ctx.o.badInputs ?? SPEC_BAD_INPUTS) {
      const r = await runBadInput(bin, c, valid, conf, {
        timeoutMs: ctx.o.timeoutMs,
        launcher: ctx.launcher,
      });
      if (r.exec.exitCode === 0) {
        // It accepted a bad input; undo what it did so later cases start clean.
        await rawExec(bin, { ...valid.env, CNI_COMMAND: "DEL" }, valid.stdin, {
          launcher: ctx.launcher,
        }).catch(() => undefined);
      }
      const check: CheckReport = { name: c.name, ok: r.ok, observed: r.observed };
      if (c.severity === "should") check.severity = "should";
      checks.push(check);
    }
    const left = (await leftovers(ns)) ?? diffAllocs(before, await allocs(ctx));
    if (left) checks.push({ name: "nothing left behind", ok: false, observed: left });
    const bad = checks.filter((c) => !c.ok && c.severity !== "should");
    const soft = checks.filter((c) => !c.ok && c.severity === "should");
    const note =
      soft.length > 0
        ? `; SHOULD deviations: ${soft.map((c) => `${c.name} → ${c.observed}`).join("; ")}`
        : "";
    return bad.length === 0
      ? pass(
          `${checks.length - soft.length}/${checks.length} malformed inputs rejected with the expected codes, ${before === undefined ? "no interface left behind (allocations not inspectable)" : "nothing left behind"}${note}`,
          checks,
        )
      : fail(
          `${bad.length}/${checks.length} not as expected: ${bad.map((c) => c.name).join("; ")}${note}`,
          checks,
        );
  },

  async [ScenarioId.ChainedPrevResult](ctx) {
    if (ctx.list.plugins.length < 2) return na("the list has one plugin: no prevResult to pass");
    await using ns = await createNetns(ctx.prefix);
    const containerId = randomContainerId();
    const params = { containerId, netns: ns.path, ifname: ctx.ifname, path: ctx.o.path };
    const opts = { timeoutMs: ctx.o.timeoutMs, env: ctx.env, launcher: ctx.launcher };
    const outputs: Record<string, unknown>[] = [];
    let prev: Record<string, unknown> | undefined;
    try {
      for (const plugin of ctx.list.plugins) {
        const bin = await findPlugin(plugin.type, ctx.o.path);
        const conf = pluginConfigFor(ctx.list, plugin, ctx.version, undefined, prev);
        const out = await execPlugin(bin, { command: "ADD", ...params }, JSON.stringify(conf), opts);
        prev = parseJsonOutput(out, { plugin: plugin.type, command: "ADD" });
        outputs.push(prev);
      }
      const first = parseResult(outputs[0]);
      const last = parseResult(outputs[outputs.length - 1]);
      const lost = sandboxIps(first).filter((a) => !sandboxIps(last).includes(a));
      if (lost.length > 0) return fail(`the chain dropped ${lost.join(", ")} of the first plugin's result`);
      if (last.cniVersion !== ctx.version)
        return fail(`last result is ${last.cniVersion}, expected ${ctx.version}`);
      const bad = await verifyAttachment(ns, last, ctx.ifname);
      if (bad) return fail(bad);
      return pass(
        `${ctx.list.plugins.map((p) => p.type).join(" → ")} passed prevResult along (${sandboxIps(last).join(", ")})`,
      );
    } finally {
      for (const plugin of [...ctx.list.plugins].reverse()) {
        const bin = await findPlugin(plugin.type, ctx.o.path);
        const conf = pluginConfigFor(ctx.list, plugin, ctx.version, undefined, prev);
        await execPlugin(bin, { command: "DEL", ...params }, JSON.stringify(conf), opts).catch(
          () => undefined,
        );
      }
    }
  },

  async [ScenarioId.ConcurrentAdds](ctx) {
    const n = ctx.o.concurrency ?? 4;
    const before = await allocs(ctx);
    const nss = await Promise.all(Array.from({ length: n }, () => createNetns(ctx.prefix)));
    const confs = nss.map((ns) => rt(ctx, ns));
    try {
      const settled = await Promise.allSettled(confs.map((c) => ctx.runtime.addNetworkList(ctx.list, c)));
      const failed = settled.filter((s) => s.status === "rejected");
      if (failed.length > 0)
        return fail(`${failed.length}/${n} concurrent ADDs failed: ${describeError(failed[0]!.reason)}`);
      const results = settled.map((s) => (s as PromiseFulfilledResult<CniResult>).value);
      const addrs = results.flatMap(sandboxIps);
      const dup = addrs.filter((a, i) => addrs.indexOf(a) !== i);
      if (dup.length > 0) return fail(`duplicate addresses: ${[...new Set(dup)].join(", ")}`);
      for (let i = 0; i < n; i++) {
        const bad = await verifyAttachment(nss[i]!, results[i]!, ctx.ifname);
        if (bad) return fail(bad);
      }
      await Promise.all(confs.map((c) => ctx.runtime.delNetworkList(ctx.list, c)));
      const leak = diffAllocs(before, await allocs(ctx));
      if (leak) return fail(`after DEL: ${leak}`);
      // Only an inspector can tell whether DEL released the addresses: claim no more than was checked.
      return pass(
        before === undefined
          ? `${n} parallel ADDs got ${addrs.length} distinct addresses; every DEL succeeded (release not checked: no allocations inspector)`
          : `${n} parallel ADDs got ${addrs.length} distinct addresses; all released`,
      );
    } finally {
      await Promise.all(confs.map((c) => ctx.runtime.delNetworkList(ctx.list, c).catch(() => undefined)));
      await Promise.all(nss.map((ns) => ns.close()));
    }
  },

  async [ScenarioId.Status](ctx) {
    if (!versionAtLeast(ctx.version, "1.1.0"))
      return na(`tested at ${ctx.version}: STATUS is a 1.1.0 verb${await probe11(ctx, "STATUS")}`);
    await ctx.runtime.statusNetworkList(ctx.list);
    return pass("every plugin reports STATUS available");
  },

  async [ScenarioId.Gc](ctx) {
    if (!versionAtLeast(ctx.version, "1.1.0"))
      return na(`tested at ${ctx.version}: GC is a 1.1.0 verb${await probe11(ctx, "GC")}`);
    if (ctx.list.disableGC === true) return na("the list sets disableGC");
    await using nsA = await createNetns(ctx.prefix);
    await using nsB = await createNetns(ctx.prefix);
    const before = await allocs(ctx);
    const a = rt(ctx, nsA);
    const b = rt(ctx, nsB);
    const ra = await ctx.runtime.addNetworkList(ctx.list, a);
    const rb = await ctx.runtime.addNetworkList(ctx.list, b);
    const valid = [{ containerID: a.containerId, ifname: a.ifname }];
    for (const plugin of ctx.list.plugins) {
      const bin = await findPlugin(plugin.type, ctx.o.path);
      const conf = {
        ...pluginConfigFor(ctx.list, plugin, ctx.version, undefined, undefined),
        [VALID_ATTACHMENTS_KEY]: valid,
      };
      await execPlugin(bin, { command: "GC", path: ctx.o.path }, JSON.stringify(conf), {
        timeoutMs: ctx.o.timeoutMs,
        env: ctx.env,
        launcher: ctx.launcher,
      });
    }
    let detail = "GC accepted (allocations not inspectable)";
    if (before !== undefined) {
      const mid = (await allocs(ctx)) ?? [];
      const keptA = sandboxIps(ra).every((x) => mid.includes(x));
      const freedB = sandboxIps(rb).every((x) => !mid.includes(x));
      if (!keptA) return fail(`GC released the valid attachment's ${sandboxIps(ra).join(", ")}`);
      if (!freedB) return fail(`GC kept the stale attachment's ${sandboxIps(rb).join(", ")}`);
      detail = `GC released ${sandboxIps(rb).join(", ")} and kept ${sandboxIps(ra).join(", ")}`;
    }
    const errs = await ctx.runtime.gcNetworkList(ctx.list, { validAttachments: valid });
    if (errs.length > 0)
      return fail(`runtime GC: DEL of the stale attachment failed: ${describeError(errs[0])}`);
    await ctx.runtime.delNetworkList(ctx.list, a);
    const leak = diffAllocs(before, await allocs(ctx));
    return leak ? fail(leak) : pass(detail);
  },
};

/** How the plugins answer a 1.1.0 verb they do not claim to support (for the not-applicable reason). */
async function probe11(ctx: Ctx, verb: "STATUS" | "GC"): Promise<string> {
  const seen: string[] = [];
  for (const plugin of ctx.list.plugins) {
    try {
      const bin = await findPlugin(plugin.type, ctx.o.path);
      const conf = {
        ...pluginConfigFor(ctx.list, plugin, "1.1.0", undefined, undefined),
        [VALID_ATTACHMENTS_KEY]: [],
      };
      const r = await rawExec(
        bin,
        { ...ctx.env, CNI_COMMAND: verb, CNI_PATH: ctx.o.path.join(":") },
        JSON.stringify(conf),
        {
          timeoutMs: ctx.o.timeoutMs,
          launcher: ctx.launcher,
        },
      );
      let code = "no error object";
      try {
        const e = parseErrorObject(JSON.parse(r.stdout));
        if (e) code = `code ${e.code}`;
      } catch {
        // not JSON: reported as is
      }
      seen.push(r.exitCode === 0 ? `${plugin.type} exit 0` : `${plugin.type} rejects it (${code})`);
    } catch (e) {
      seen.push(`${plugin.type}: ${describeError(e)}`);
    }
  }
  return seen.length > 0 ? `; ${seen.join(", ")}` : "";
}

/**
 * Runs the chain through the selected scenarios and returns the report. Needs root (network
 * namespaces). Each scenario gets its own namespaces and container ids; the runtime's result cache
 * lives in a temporary directory removed at the end.
 */
export async function runConformance(o: CniConformanceOptions): Promise<ConformanceReport> {
  validateNetConfList(o.config);
  const env = o.env ?? DEFAULT_PLUGIN_ENV;
  const cacheDir = await mkdtemp(join(tmpdir(), "mgcni-cache-"));
  const prefix = o.netnsPrefix ?? "mgcni";
  const hostNs = o.isolateHost === false ? undefined : await createNetns(`${prefix}-host`);
  const launcher = hostNs === undefined ? undefined : ["ip", "netns", "exec", hostNs.name];
  const probeRuntime = createCniRuntime({ path: o.path, cacheDir, timeoutMs: o.timeoutMs, env, launcher });
  const supported: Record<string, string[]> = {};
  for (const p of o.config.plugins) {
    try {
      supported[p.type] = (await probeRuntime.versionInfo(p.type)).supportedVersions;
    } catch {
      supported[p.type] = [];
    }
  }
  const shared = SUPPORTED_CNI_VERSIONS.filter((v) => Object.values(supported).every((s) => s.includes(v)));
  const listVersions = [o.config.cniVersion, ...(o.config.cniVersions ?? [])];
  const version = highestVersion(listVersions.filter((v) => shared.includes(v)));
  const chain = o.config.plugins.map((p) => p.type).join(" → ");
  const report: ConformanceReport = {
    chain,
    network: o.config.name,
    testedVersion: version ?? o.config.cniVersion,
    supportedVersions: supported,
    allocationsChecked: o.allocations !== undefined,
    scenarios: [],
    summary: { pass: 0, fail: 0, notApplicable: 0 },
  };
  try {
    const { cniVersions: _ignored, ...rest } = o.config;
    const list: NetConfList = { ...rest, cniVersion: version ?? o.config.cniVersion };
    const runtime = createCniRuntime({
      path: o.path,
      cacheDir,
      timeoutMs: o.timeoutMs,
      env,
      supportedVersions: shared,
      launcher,
    });
    const ctx: Ctx = {
      o,
      list,
      version: list.cniVersion,
      runtime,
      ifname: o.ifname ?? "eth0",
      supported,
      prefix,
      env,
      launcher,
    };
    for (const id of o.scenarios ?? ALL_SCENARIOS) {
      const t0 = performance.now();
      let v: Verdict;
      if (version === undefined && id !== ScenarioId.Version) {
        v = fail(`no version shared by the list (${listVersions.join(", ")}) and every plugin`);
      } else {
        try {
          v = await scenarios[id](ctx);
        } catch (e) {
          v = fail(describeError(e));
        }
      }
      const entry: ScenarioReport = {
        id,
        outcome: v.outcome,
        reason: v.reason,
        durationMs: performance.now() - t0,
      };
      if (v.checks) entry.checks = v.checks;
      report.scenarios.push(entry);
      if (v.outcome === "pass") report.summary.pass++;
      else if (v.outcome === "fail") report.summary.fail++;
      else report.summary.notApplicable++;
    }
  } finally {
    await hostNs?.close();
    await rm(cacheDir, { recursive: true, force: true });
  }
  return report;
}
