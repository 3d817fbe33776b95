import type { Logger } from "@margay/api";
import type { DataplaneSnapshot } from "../driver.js";
import { DataplaneErrorCode, isDataplaneError } from "../errors.js";
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
import type { ProgrammedRoute, RoutePlan, RoutePlanOptions } from "../routes/plan.js";
import { ensureVxlan, probeIpip, removeVxlan } from "../routes/vxlan.js";

/** The route half of the Linux driver: the model's route plan in the kernel (routes, VXLAN device). */
export interface RouteSync {
  /** Result of the IPIP probe (made when a pool first asks for IPIP; undefined before). */
  readonly ipip: { readonly supported: boolean; readonly reason: string } | undefined;
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
    full: boolean,
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
    const planOptions = { ...base, ipipSupported: ipip?.supported ?? false };
    const dirtyKeys = !full && dirty !== "all" && lastPlan !== undefined ? dirty : undefined;
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
    // Even when some lines fail the kernel moved; the cache holds the intent and the next full reconcile
    // (which re-reads the kernel) repairs whatever did not land.
    const remember = (ks: Iterable<string>) => {
      for (const dst of ks) {
        const r = plan.routes.get(dst);
        if (r === undefined) cache.delete(dst);
        else cache.set(dst, r);
      }
    };
    if (full) cache = new Map(current);
    const freeRun = applyRouteLines(runner, ns, free.lines, { signal }, ipSession);
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
        applyRouteLines(runner, ns, gated.lines, { signal }, ipSession).catch(async (e: unknown) => {
          deferred = await deferMissingDevices(e, gatedKeys);
        }),
      ]);
    } finally {
      remember(keys);
      // A deferred route is not in the kernel: the next full reconcile plans it again.
      for (const dst of deferred) cache.delete(dst);
    }
    for (const w of plan.warnings) log.warn({ warning: w }, "route not programmable");
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
      await applyRouteLines(runner, ns, rest.lines, { signal }, ipSession);
      return missing;
    }
  }

  return {
    get ipip() {
      return ipip;
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
