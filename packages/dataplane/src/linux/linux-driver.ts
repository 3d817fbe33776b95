import { type Logger, silentLogger } from "@margay/api";
import { DATAPLANE_DEFAULTS } from "../defaults.js";
import {
  type ApplyResult,
  type DataplaneDriver,
  type DataplaneSnapshot,
  type DriverCallOptions,
  createSerialQueue,
} from "../driver.js";
import { DataplaneError, DataplaneErrorCode, throwIfAborted } from "../errors.js";
import { bridgeJson, findLinkJson, ipJson } from "../kernel/iproute.js";
import { createIpBatchSession } from "../kernel/ip-session.js";
import { validateIfName } from "../kernel/names.js";
import { dataplanePrefix } from "../workload/plumbing.js";
import type { NetnsHandle } from "../kernel/netns.js";
import { type CommandRunner, createProcessRunner } from "../kernel/runner.js";
import { EMPTY_POLICY_SNAPSHOT, natPools, policySnapshot } from "../snapshot.js";
import { createNftProgrammer } from "../nft/programmer.js";
import {
  type NftMarks,
  type NftRenderOptions,
  createNftRenderCache,
  renderRuleset,
  renderRulesetDelta,
} from "../nft/render.js";
import { POLICY_KIND_SET, createDataplaneModel } from "../model.js";
import { applyPolicyUpdate, createPolicyState } from "../policy-state.js";
import type { PolicyUpdate } from "@margay/dataplane-contract";
import type { DataplaneUpdate } from "../stream.js";
import {
  type RouteTableSpec,
  applyRouteLines,
  diffRouteKeys,
  listOwnedRoutes,
  type OwnedState,
  readOwnedState,
} from "../routes/kernel-routes.js";
import type { ProgrammedRoute, RoutePlan, RoutePlanOptions } from "../routes/plan.js";
import { ensureVxlan, probeIpip, removeVxlan } from "../routes/vxlan.js";

/**
 * The driver's logger: `@margay/api`'s pino-shaped {@link Logger}.
 *
 * @deprecated Use `Logger` from `@margay/api`; this alias stays for compatibility.
 */
export type DataplaneLogger = Logger;

/** Options of {@link createLinuxDataplane}. Defaults are {@link DATAPLANE_DEFAULTS}. */
export interface LinuxDataplaneOptions {
  /** The namespace to program (the node's). Required: there is no implicit host namespace. */
  readonly netns: NetnsHandle;
  /** This host's node name. */
  readonly nodeName: string;
  /** Runs kernel commands. Default: real processes. */
  readonly runner?: CommandRunner | undefined;
  /** Route protocol number that marks routes as ours (1..255, not 0-4 which the kernel uses). Default 80. */
  readonly routeProtocol?: number | undefined;
  /** Routing table. Default 254 (main). */
  readonly routeTable?: number | undefined;
  /** VXLAN device name. Default `vxlan.margay`. */
  readonly vxlanDevice?: string | undefined;
  /** VXLAN VNI. Default 4096. */
  readonly vxlanVni?: number | undefined;
  /** VXLAN UDP port. Default 4789. */
  readonly vxlanPort?: number | undefined;
  /** VXLAN device MTU. Default 1450. */
  readonly vxlanMtu?: number | undefined;
  /** Periodic reconciliation in ms; 0 disables. Default 90 000. */
  readonly reconcileIntervalMs?: number | undefined;
  /**
   * Structured logger (pino-compatible); records carry `component: "dataplane"`. Every rejected batch
   * (`error`, "dataplane batch rejected") and every workload interface failed closed is logged. Default:
   * silent.
   */
  readonly logger?: Logger | undefined;
  /** Policy enforcement with nftables. */
  readonly nftables?: LinuxNftablesOptions | undefined;
  /**
   * Keep one `ip -force -batch -` process for route changes, fed over stdin, instead of starting one per
   * batch (used only if the runner can start long-lived processes). Default `true`.
   */
  readonly persistentIp?: boolean | undefined;
}

/** nftables settings of the Linux driver. */
export interface LinuxNftablesOptions {
  /** Render policy into nftables. Default `true`; `false` leaves packet filtering to someone else. */
  readonly enabled?: boolean | undefined;
  /** Table name (family inet). Default `margay`. */
  readonly table?: string | undefined;
  /**
   * Host-side workload interface prefixes: traffic of a `<prefix>*` interface that no endpoint names is
   * dropped (fail closed) and the interface logged. Default `[DATAPLANE_DEFAULTS.ifPrefix]` (`["mgy"]`),
   * the default of `workloadInterfaceName` in `@margay/api`; the plumber's `ifPrefix` must be among them.
   */
  readonly workloadPrefixes?: readonly string[] | undefined;
  /** Workload-to-host traffic after egress policy. Default `accept`. */
  readonly endpointToHost?: "accept" | "drop" | undefined;
  /** Mark bits for allow/pass. Default `{ allow: 0x10000, pass: 0x20000 }`. */
  readonly marks?: NftMarks | undefined;
}

/** The Linux driver: a {@link DataplaneDriver} plus explicit reconciliation. */
export interface LinuxDataplane extends DataplaneDriver {
  /**
   * Compares the kernel with the model and repairs the difference: restores our routes someone deleted,
   * removes routes carrying our protocol number that the model does not want, leaves every other route
   * alone. A no-op before the first in-sync.
   */
  reconcile(options?: DriverCallOptions): Promise<{ added: number; removed: number }>;
  /**
   * Workload-prefixed interfaces that no programmed endpoint names, as of the last check (first in-sync,
   * each reconcile, each batch that removes an endpoint). Their traffic is dropped; each is logged once
   * (`warn`, "workload interface has no endpoint") when first seen.
   */
  readonly unclaimedInterfaces: readonly string[];
  /** Result of the IPIP probe (made when a pool first asks for IPIP after in-sync; undefined before). */
  readonly ipip: { readonly supported: boolean; readonly reason: string } | undefined;
}

function checkInt(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new DataplaneError(DataplaneErrorCode.InvalidOptions, `${name} out of range`, {
      details: { [name]: v, min, max },
    });
  }
  return v;
}

/** Creates the Linux driver for `options.netns`. It touches nothing until the first in-sync. */
export function createLinuxDataplane(options: LinuxDataplaneOptions): LinuxDataplane {
  const runner = options.runner ?? createProcessRunner();
  const ns = options.netns;
  const log = (options.logger ?? silentLogger).child({ component: "dataplane" });
  const spec: RouteTableSpec = {
    protocol: checkInt("routeProtocol", options.routeProtocol ?? DATAPLANE_DEFAULTS.routeProtocol, 5, 255),
    table: checkInt("routeTable", options.routeTable ?? DATAPLANE_DEFAULTS.routeTable, 1, 0xfffffffe),
  };
  const base: Omit<RoutePlanOptions, "ipipSupported"> = {
    nodeName: options.nodeName,
    vxlanDevice: validateIfName(options.vxlanDevice ?? DATAPLANE_DEFAULTS.vxlanDevice),
    vxlanVni: checkInt("vxlanVni", options.vxlanVni ?? DATAPLANE_DEFAULTS.vxlanVni, 1, 0xffffff),
    vxlanPort: checkInt("vxlanPort", options.vxlanPort ?? DATAPLANE_DEFAULTS.vxlanPort, 1, 65535),
    vxlanMtu: checkInt("vxlanMtu", options.vxlanMtu ?? DATAPLANE_DEFAULTS.vxlanMtu, 68, 65535),
    ipipDevice: DATAPLANE_DEFAULTS.ipipDevice,
  };
  const interval = checkInt(
    "reconcileIntervalMs",
    options.reconcileIntervalMs ?? DATAPLANE_DEFAULTS.reconcileIntervalMs,
    0,
    2 ** 31 - 1,
  );
  const nftOptions = options.nftables ?? {};
  const nftEnabled = nftOptions.enabled ?? true;
  const render: NftRenderOptions = {
    table: validateIfName(nftOptions.table ?? "margay"),
    workloadPrefixes: (nftOptions.workloadPrefixes ?? [DATAPLANE_DEFAULTS.ifPrefix]).map(dataplanePrefix),
    endpointToHost: nftOptions.endpointToHost ?? "accept",
    marks: nftOptions.marks ?? { allow: 0x10000, pass: 0x20000 },
    priority: 0,
  };
  const nft = createNftProgrammer(runner, ns, render);
  const ipSession = (options.persistentIp ?? true) ? createIpBatchSession(runner, ns) : undefined;
  const renderCache = createNftRenderCache();
  const model = createDataplaneModel();
  // What the kernel accepted: the model's policy half lags behind it by the batches whose nftables
  // transaction was refused, so snapshots report the last good state rather than refused objects.
  const accepted = createPolicyState();
  let acceptedNatPools: string[] = [];
  let pendingPolicy: PolicyUpdate[] = [];
  // What changed since the last accepted transaction, so a small batch renders only its own pieces.
  // It accumulates across refused transactions: their changes are still owed to the kernel.
  let dirty = freshDirty();
  let acceptedRefVersion = -1;
  const commitPolicy = () => {
    for (const u of pendingPolicy) applyPolicyUpdate(accepted, u);
    pendingPolicy = [];
    acceptedNatPools = natPools(model.routes.pools);
    dirty = freshDirty();
    acceptedRefVersion = model.policy.refVersion;
  };
  const noteDirty = (u: DataplaneUpdate) => {
    switch (u.kind) {
      case "ip-set-update":
      case "ip-set-delta-update":
      case "ip-set-remove":
        dirty.ipSets.add(u.id);
        return;
      case "active-policy-update":
      case "active-policy-remove":
        dirty.policies.add(u.id);
        return;
      case "active-profile-update":
      case "active-profile-remove":
        dirty.profiles.add(u.id);
        return;
      case "workload-endpoint-update":
      case "workload-endpoint-remove":
        dirty.workloads.add(u.id);
        return;
      case "host-endpoint-update":
      case "host-endpoint-remove":
      case "pool-update":
      case "pool-remove":
        dirty.all = true;
        return;
      default:
        return;
    }
  };
  const queue = createSerialQueue();
  let ipip: { supported: boolean; reason: string } | undefined;
  /** What we believe the kernel holds (our routes), so incremental batches need not list 10k routes. */
  let cache = new Map<string, ProgrammedRoute>();
  let vxlanKey: string | undefined;
  let lastPlan: RoutePlan | undefined;
  let programmed = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let unclaimed = new Set<string>();

  /** Finds workload-prefixed interfaces no accepted endpoint names and logs the new ones. */
  async function checkUnclaimed(signal: AbortSignal | undefined) {
    if (!nftEnabled) return;
    const links = await ipJson<{ ifname: string }>(runner, ns, ["link", "show"], { signal });
    const claimed = new Set<string>();
    for (const w of accepted.workloads.values()) claimed.add(w.ifname);
    const now = new Set<string>();
    for (const { ifname } of links) {
      if (claimed.has(ifname) || !render.workloadPrefixes.some((p) => ifname.startsWith(p))) continue;
      now.add(ifname);
      if (!unclaimed.has(ifname))
        log.warn({ ifname }, "workload interface has no endpoint; its traffic is dropped");
    }
    unclaimed = now;
  }

  const ensureOpen = () => {
    if (closed) throw new DataplaneError(DataplaneErrorCode.Closed, "driver is closed");
  };

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

  async function programPolicy(full: boolean, signal: AbortSignal | undefined) {
    if (nftEnabled) {
      const current = nft.current;
      if (!full && current !== undefined && !dirty.all && model.policy.refVersion === acceptedRefVersion) {
        const { next, text } = renderRulesetDelta(
          current,
          (id) => accepted.workloads.get(id)?.ifname,
          model.policy,
          render,
          renderCache,
          dirty,
        );
        await nft.applyDelta(next, text, { signal });
      } else {
        const pools = [...model.routes.pools.values()];
        await nft.apply(renderRuleset(model.policy, pools, render, renderCache), full, { signal });
      }
    }
    commitPolicy();
  }

  /**
   * Brings the kernel to the plan. `full` re-reads the kernel instead of trusting the cache; otherwise
   * only the routes in `dirty` are re-planned and compared (unless hosts, VTEPs or pools changed).
   *
   * `policyFirst` is the batch's nftables transaction. Routes to local workloads (device routes) wait
   * for it: a new workload's route must not go live before its chains exist. Every other change (remote
   * blocks, blackholes, deletions) opens no path to a workload that policy has not seen, so it goes to
   * the kernel while nft is still working: at start-up the two big transactions overlap.
   */
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
      ? (listing ?? readOwnedState(runner, ns, spec, base.vxlanDevice, { signal }))
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
    try {
      await Promise.all([freeRun, applyRouteLines(runner, ns, gated.lines, { signal }, ipSession)]);
    } finally {
      remember(keys);
    }
    const diff = { added: free.added + gated.added, removed: free.removed + gated.removed };
    programmed = true;
    for (const w of plan.warnings) log.warn({ warning: w }, "route not programmable");
    return { plan, added: diff.added, removed: diff.removed };
  }

  async function reconcileNow(signal: AbortSignal | undefined) {
    ensureOpen();
    throwIfAborted(signal);
    if (!model.inSync) return { added: 0, removed: 0 };
    // Reading our routes starts first: it runs while the nftables text is rendered and applied.
    const listing = readOwnedState(runner, ns, spec, base.vxlanDevice, { signal });
    listing.catch(() => undefined);
    const policy = programPolicy(true, signal);
    policy.catch(() => undefined);
    const r = await program(true, signal, "all", policy, listing);
    if (r.added + r.removed > 0) log.info({ added: r.added, removed: r.removed }, "reconciled routes");
    await checkUnclaimed(signal);
    return { added: r.added, removed: r.removed };
  }

  function schedule() {
    if (interval === 0 || timer !== undefined || closed) return;
    timer = setInterval(() => {
      queue(() => reconcileNow(undefined)).catch((e: unknown) => log.warn({ err: e }, "reconcile failed"));
    }, interval);
    timer.unref();
  }

  const close = async () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    await queue(async () => {
      closed = true;
      ipSession?.close();
    });
  };

  return {
    get ipip() {
      return ipip;
    },
    get unclaimedInterfaces() {
      return [...unclaimed].sort();
    },
    apply(updates, callOptions = {}): Promise<ApplyResult> {
      const applied = queue(async () => {
        ensureOpen();
        throwIfAborted(callOptions.signal);
        const effect = model.applyBatch(updates);
        for (const u of updates) {
          if (POLICY_KIND_SET.has(u.kind)) pendingPolicy.push(u as PolicyUpdate);
          noteDirty(u);
        }
        if (!model.inSync) return { inSync: false, programmed: false, warnings: [] };
        // The first in-sync reads the kernel (adopting a previous run's routes) and replaces the nftables
        // table atomically; later batches apply differences only.
        const first = effect.sawInSync && !programmed;
        let warnings: readonly string[] = [];
        // At the first in-sync, reading the kernel's routes overlaps with rendering the nftables table.
        const listing = first
          ? readOwnedState(runner, ns, spec, base.vxlanDevice, { signal: callOptions.signal })
          : undefined;
        const policy = first || effect.policyChanged ? programPolicy(first, callOptions.signal) : undefined;
        // Handled here so an early failure elsewhere cannot leave them unobserved; still awaited below.
        listing?.catch(() => undefined);
        policy?.catch(() => undefined);
        if (first || effect.routesChanged) {
          const dirty = first ? "all" : effect.dirtyRoutes;
          warnings = (await program(first, callOptions.signal, dirty, policy, listing)).plan.warnings;
        } else await policy;
        programmed = true;
        if (first || updates.some((u) => u.kind === "workload-endpoint-remove"))
          await checkUnclaimed(callOptions.signal);
        if (first) schedule();
        return { inSync: true, programmed: true, warnings };
      });
      applied.catch((e: unknown) => {
        const { code, retryable, message } = e as { code?: unknown; retryable?: unknown; message?: unknown };
        log.error(
          { updates: Array.isArray(updates) ? updates.length : undefined, code, retryable, error: message },
          "dataplane batch rejected",
        );
      });
      return applied;
    },
    reconcile(callOptions = {}) {
      return queue(() => reconcileNow(callOptions.signal));
    },
    snapshot(callOptions = {}): Promise<DataplaneSnapshot> {
      return queue(async () => {
        ensureOpen();
        const signal = callOptions.signal;
        const routes = [...(await listOwnedRoutes(runner, ns, spec, { signal })).values()].sort((a, b) =>
          a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0,
        );
        const vteps = await readVteps(runner, ns, base.vxlanDevice, signal);
        return {
          inSync: model.inSync,
          routes,
          vteps,
          ...(programmed ? policySnapshot(accepted) : EMPTY_POLICY_SNAPSHOT),
          natPools: programmed ? acceptedNatPools : [],
        };
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function freshDirty() {
  return {
    ipSets: new Set<string>(),
    policies: new Set<string>(),
    profiles: new Set<string>(),
    workloads: new Set<string>(),
    all: false,
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
