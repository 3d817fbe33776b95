import type { Logger } from "@margay/api";
import type { DataplaneSnapshot } from "../driver.js";
import { DataplaneError, DataplaneErrorCode, isDataplaneError } from "../errors.js";
import { bridgeJson, findLinkJson, ipJson } from "../kernel/iproute.js";
import type { IpBatchSession } from "../kernel/ip-session.js";
import type { NetnsHandle } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import type { DataplaneModel } from "../model.js";
import {
  type OwnedState,
  type RouteTableSpec,
  applyRouteLines,
  diffRouteKeys,
  listOwnedRoutes,
  readOwnedState,
} from "../routes/kernel-routes.js";
import {
  type ProgrammedRoute,
  type RoutePlan,
  type RoutePlanOptions,
  type UnderlayPath,
  flatNextHopAddresses,
} from "../routes/plan.js";
import { resolveUnderlay } from "../routes/underlay.js";
import { ensureVxlan, probeIpip, removeVxlan } from "../routes/vxlan.js";

/** The route half of the Linux driver: the model's route plan in the kernel (routes, VXLAN device). */
export interface RouteSync {
  /** Result of the IPIP probe (made when a pool first asks for IPIP; undefined before). */
  readonly ipip: { readonly supported: boolean; readonly reason: string } | undefined;
  /** Routes of the last plan not programmed because their flat next hop is unreachable: dst → why. */
  readonly unresolved: ReadonlyMap<string, string>;
  /** Starts reading our routes and whether the VXLAN device exists (so it can overlap other work). */
  readOwned(signal: AbortSignal | undefined): Promise<OwnedState>;
  /**
   * Brings the kernel to the plan. `full` re-reads the kernel instead of trusting the cache; otherwise
   * only the routes in `dirty` are re-planned and compared (unless hosts, VTEPs or pools changed).
   *
   * `policyFirst` is the batch's nftables transaction. Routes to local workloads (device routes) wait
   * for it: a new workload's route must not go live before its chains exist. Every other change (remote
   * blocks, blackholes, deletions) opens no path to a workload that policy has not seen, so it goes to
   * the kernel while nft is still working: at start-up the two big transactions overlap.
   */
  program(
    full: boolean,
    signal: AbortSignal | undefined,
    dirty?: ReadonlySet<string> | "all",
    policyFirst?: Promise<void>,
    listing?: Promise<OwnedState>,
  ): Promise<{ plan: RoutePlan; added: number; removed: number }>;
  /** The route fields of a snapshot, read from the kernel. */
  snapshot(signal: AbortSignal | undefined): Promise<Pick<DataplaneSnapshot, "routes" | "vteps">>;
}

/** What {@link createRouteSync} needs from the driver. */
export interface RouteSyncDeps {
  readonly runner: CommandRunner;
  readonly ns: NetnsHandle;
  readonly model: DataplaneModel;
  readonly spec: RouteTableSpec;
  readonly base: Omit<RoutePlanOptions, "ipipSupported">;
  readonly ipSession: IpBatchSession | undefined;
  readonly log: Logger;
}

/** Creates the route half of the Linux driver. */
export function createRouteSync({ runner, ns, model, spec, base, ipSession, log }: RouteSyncDeps): RouteSync {
  let ipip: { supported: boolean; reason: string } | undefined;
  /** What we believe the kernel holds (our routes), so incremental batches need not list 10k routes. */
  let cache = new Map<string, ProgrammedRoute>();
  let vxlanKey: string | undefined;
  let lastPlan: RoutePlan | undefined;
  /** How the kernel reaches each flat next hop (`ip route get`); refreshed at every full reconcile. */
  let underlay = new Map<string, UnderlayPath>();
  /** A batch's route lines failed: the cache may not match the kernel, so the next batch re-reads it. */
  let stale = false;
  let unresolved: ReadonlyMap<string, string> = new Map();

  async function programVxlan(
    plan: RoutePlan,
    force: boolean,
    signal: AbortSignal | undefined,
    present?: boolean | undefined,
  ) {
    const key = JSON.stringify([plan.vxlan, plan.neighbors, plan.fdb]);
    if (!force && key === vxlanKey) return;
    if (plan.vxlan === undefined) {
      if (present !== false) await removeVxlan(runner, ns, base.vxlanDevice, { signal });
    } else await ensureVxlan(runner, ns, plan.vxlan, plan.neighbors, plan.fdb, { signal });
    vxlanKey = key;
  }

  const readOwned = (signal: AbortSignal | undefined) =>
    readOwnedState(runner, ns, spec, base.vxlanDevice, { signal });

  async function program(
    fullAsked: boolean,
    signal: AbortSignal | undefined,
    dirty: ReadonlySet<string> | "all" = "all",
    policyFirst?: Promise<void>,
    listing?: Promise<OwnedState>,
  ) {
    // Probe for IPIP only once a pool asks for it: one process fewer on every start of a VXLAN/flat node.
    if (ipip === undefined && [...model.routes.pools.values()].some((p) => p.encapsulation === "ipip")) {
      ipip = await probeIpip(runner, ns, { signal });
      if (!ipip.supported) log.info({ reason: ipip.reason }, "ipip unavailable");
    }
    // After a failed batch the cache may hold routes the kernel refused: read the kernel instead, so the
    // retry issues the refused lines again rather than finding nothing to do and reporting success.
    const full = fullAsked || stale;
    const dirtyKeys0 = !full && dirty !== "all" && lastPlan !== undefined ? dirty : undefined;
    // Flat next hops are resolved through the kernel's own route to them (BIRD's `gateway recursive`):
    // all of them again at a full reconcile (the underlay may have changed), new ones otherwise.
    const wanted = flatNextHopAddresses(model.routes, { ...base, ipipSupported: false }, dirtyKeys0);
    const ask = full ? [...wanted] : [...wanted].filter((a) => !underlay.has(a));
    if (ask.length > 0) {
      const answers = await resolveUnderlay(runner, ns, ask, { signal });
      if (full) underlay = answers;
      else for (const [a, p] of answers) underlay.set(a, p);
    } else if (full) underlay = new Map();
    const planOptions = { ...base, ipipSupported: ipip?.supported ?? false, underlay };
    const dirtyKeys = dirtyKeys0;
    const incremental = dirtyKeys !== undefined;
    const plan =
      dirtyKeys !== undefined && lastPlan !== undefined
        ? model.planRoutes(planOptions, { prev: lastPlan, dsts: dirtyKeys })
        : model.planRoutes(planOptions);
    // The VXLAN device, its neighbours and FDB entries open no path for a workload by themselves, so they
    // go in parallel with the policy transaction; routes wait for them.
    const read: Promise<OwnedState> = full
      ? (listing ?? readOwned(signal))
      : Promise.resolve({ routes: cache, devicePresent: undefined });
    const settled = Promise.all([
      read,
      incremental ? undefined : read.then((r) => programVxlan(plan, full, signal, r.devicePresent)),
    ]);
    const noRoutesYet = (e: unknown) => {
      // Nothing of this batch's routes reached the kernel: plan the next batch in full against the cache.
      lastPlan = undefined;
      throw e;
    };
    const [state] = await settled.catch(async (e: unknown) => {
      await policyFirst?.catch(() => undefined);
      return noRoutesYet(e);
    });
    const current = state.routes;
    const keys = dirtyKeys ?? new Set([...current.keys(), ...plan.routes.keys()]);
    const gatedKeys: string[] = [];
    const freeKeys: string[] = [];
    for (const k of keys) (isWorkloadRoute(plan.routes.get(k)) ? gatedKeys : freeKeys).push(k);
    const free = diffRouteKeys(current, plan.routes, freeKeys, spec);
    const gated = diffRouteKeys(current, plan.routes, gatedKeys, spec);
    // Even when some lines fail the kernel moved; the cache holds the intent, and `stale` makes the next
    // batch re-read the kernel (so what did not land is issued again, and fails again, visibly).
    const remember = (ks: Iterable<string>) => {
      for (const dst of ks) {
        const r = plan.routes.get(dst);
        if (r === undefined) cache.delete(dst);
        else cache.set(dst, r);
      }
    };
    if (full) {
      cache = new Map(current);
      stale = false;
    }
    const apply = (lines: readonly string[]) =>
      applyRouteLines(runner, ns, lines, { signal }, ipSession).catch((e: unknown) => {
        stale = true;
        throw explainRejectedRoutes(e, lines);
      });
    const freeRun = apply(free.lines);
    freeRun.catch(() => undefined);
    try {
      await policyFirst;
    } catch (e) {
      await freeRun.catch(() => undefined);
      remember(freeKeys);
      return noRoutesYet(e);
    }
    lastPlan = plan;
    let deferred: ReadonlySet<string> = new Set();
    try {
      await Promise.all([
        freeRun,
        apply(gated.lines).catch(async (e: unknown) => {
          deferred = await deferMissingDevices(e, gatedKeys);
        }),
      ]);
      // Only the deferred routes failed (the rest was applied again without them): the cache is right.
      stale = false;
    } catch (e) {
      lastPlan = undefined;
      throw e;
    } finally {
      remember(keys);
      // A deferred route is not in the kernel: the next full reconcile plans it again.
      for (const dst of deferred) cache.delete(dst);
    }
    for (const w of plan.warnings) log.warn({ warning: w }, "route not programmable");
    unresolved = plan.unresolved ?? new Map();
    return { plan, added: free.added + gated.added, removed: free.removed + gated.removed };

    /**
     * A workload's device route whose interface is gone (its veth was removed while the agent was down,
     * or a runtime deleted the namespace without a DEL) is deferred, as Felix's route manager waits for
     * an interface, instead of failing the batch: a batch that fails on it would be retried as it was
     * and never land. Any other failure, or one with every device present, is rethrown.
     */
    async function deferMissingDevices(e: unknown, candidates: readonly string[]): Promise<Set<string>> {
      if (!isDataplaneError(e, DataplaneErrorCode.CommandFailed) || signal?.aborted) throw e;
      const links = await ipJson<{ ifname: string }>(runner, ns, ["link", "show"], { signal });
      const present = new Set(links.map((l) => l.ifname));
      const missing = new Set<string>();
      const devices = new Set<string>();
      for (const k of candidates) {
        const dev = plan.routes.get(k)?.nextHops[0]?.dev;
        if (dev !== undefined && !present.has(dev)) {
          missing.add(k);
          devices.add(dev);
        }
      }
      if (missing.size === 0) throw e;
      log.warn(
        { routes: [...missing].slice(0, 20), devices: [...devices].slice(0, 20), count: missing.size },
        "workload interface missing: its route waits until the interface exists",
      );
      const rest = diffRouteKeys(
        current,
        plan.routes,
        candidates.filter((k) => !missing.has(k)),
        spec,
      );
      await apply(rest.lines);
      return missing;
    }
  }

  return {
    get ipip() {
      return ipip;
    },
    get unresolved() {
      return unresolved;
    },
    readOwned,
    program,
    async snapshot(signal) {
      const routes = [...(await listOwnedRoutes(runner, ns, spec, { signal })).values()].sort((a, b) =>
        a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0,
      );
      const vteps = await readVteps(runner, ns, base.vxlanDevice, signal);
      return { routes, vteps };
    },
  };
}

const FAILED_LINE = /^Command failed -:(\d+)$/;

/**
 * Names the routes the kernel refused and its words for each (`ip` reports them as `Command failed -:N`
 * after the error): the health reason an operator reads must say which route and why, not only "ip batch
 * failed". Keeps the code (`command-failed`) so callers still classify it.
 */
export function explainRejectedRoutes(e: unknown, lines: readonly string[]): unknown {
  if (!isDataplaneError(e, DataplaneErrorCode.CommandFailed)) return e;
  let failed = (e.details.failed as { line: string; error: string }[] | undefined) ?? [];
  const stderr = e.details.stderr;
  if (failed.length === 0 && typeof stderr === "string") {
    // A one-shot `ip -force -batch`: the line numbers are the batch's own.
    let error: string[] = [];
    for (const raw of stderr.split("\n")) {
      const text = raw.trim();
      const m = FAILED_LINE.exec(text);
      if (m === null) {
        if (text !== "") error.push(text);
        continue;
      }
      failed.push({ line: lines[Number(m[1]) - 1] ?? "", error: error.join(" | ") });
      error = [];
    }
  }
  failed = failed.filter((f) => f.line !== "");
  if (failed.length === 0) return e;
  const first = failed[0]!;
  const words = first.error.replace(/^(RTNETLINK answers|Error): /, "");
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : "";
  return new DataplaneError(
    DataplaneErrorCode.CommandFailed,
    `kernel rejected "${first.line}": ${words}${more}`,
    { retryable: true, cause: e, details: { failed: failed.slice(0, 50) } },
  );
}

/** A device route (no gateway): how a local workload is reached. Those wait for the workload's chains. */
function isWorkloadRoute(r: ProgrammedRoute | undefined): boolean {
  return r !== undefined && r.type === "unicast" && r.nextHops.every((h) => h.via === undefined);
}

async function readVteps(
  runner: CommandRunner,
  ns: NetnsHandle,
  dev: string,
  signal: AbortSignal | undefined,
): Promise<DataplaneSnapshot["vteps"]> {
  if ((await findLinkJson(runner, ns, dev, { signal })) === undefined) return [];
  const neigh = await ipJson<{ dst: string; lladdr?: string }>(
    runner,
    ns,
    ["-4", "neigh", "show", "dev", dev],
    {
      signal,
    },
  );
  const fdb = await bridgeJson<{ mac: string; dst?: string }>(runner, ns, ["fdb", "show", "dev", dev], {
    signal,
  });
  return neigh
    .filter((n) => n.lladdr !== undefined)
    .map((n) => ({
      address: n.dst,
      mac: n.lladdr!,
      underlay: fdb.find((f) => f.mac === n.lladdr)?.dst ?? "",
    }))
    .sort((a, b) => (a.address < b.address ? -1 : 1));
}
