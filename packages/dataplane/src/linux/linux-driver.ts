import type { Logger } from "@margay/api";
import {
  type ApplyResult,
  type DataplaneDriver,
  type DataplaneSnapshot,
  type DriverCallOptions,
  createSerialQueue,
  logRejectedBatch,
} from "../driver.js";
import { DataplaneError, DataplaneErrorCode, throwIfAborted } from "../errors.js";
import { createIpBatchSession } from "../kernel/ip-session.js";
import type { NetnsHandle } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import { createDataplaneModel } from "../model.js";
import type { NftMarks } from "../nft/render.js";
import { EMPTY_POLICY_SNAPSHOT } from "../snapshot.js";
import { resolveLinuxOptions } from "./options.js";
import { createPolicySync } from "./policy-sync.js";
import { createRouteSync } from "./route-sync.js";

// The driver in four parts: options.ts (defaults and checks), route-sync.ts (routes and the VXLAN
// device), policy-sync.ts (the nftables table and fail-closed workload interfaces) and, here, the
// lifecycle that orders them: one serial queue, nothing before the first in-sync, policy before the
// routes that open a path to a workload, periodic reconciliation, close.

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
   * each reconcile, each batch that removes an endpoint), less those an endpoint has named since. Their
   * traffic is dropped; each is logged once (`warn`, "workload interface has no endpoint") when first seen.
   */
  readonly unclaimedInterfaces: readonly string[];
  /** Result of the IPIP probe (made when a pool first asks for IPIP after in-sync; undefined before). */
  readonly ipip: { readonly supported: boolean; readonly reason: string } | undefined;
  /**
   * Remote routes not programmed because the kernel has no route to their flat next hop (`ip route get`
   * failed), as of the last batch or reconcile: dst → why. Also in each batch's `warnings` and logged
   * (`warn`, "route not programmable").
   */
  readonly unresolvedRoutes: ReadonlyMap<string, string>;
}

/** Creates the Linux driver for `options.netns`. It touches nothing until the first in-sync. */
export function createLinuxDataplane(options: LinuxDataplaneOptions): LinuxDataplane {
  const { runner, ns, log, spec, base, interval, nftEnabled, render, persistentIp } =
    resolveLinuxOptions(options);
  const ipSession = persistentIp ? createIpBatchSession(runner, ns) : undefined;
  const model = createDataplaneModel();
  const policy = createPolicySync({ runner, ns, model, render, enabled: nftEnabled, log });
  const routes = createRouteSync({ runner, ns, model, spec, base, ipSession, log });
  const queue = createSerialQueue();
  let programmed = false;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;

  const ensureOpen = () => {
    if (closed) throw new DataplaneError(DataplaneErrorCode.Closed, "driver is closed");
  };

  async function reconcileNow(signal: AbortSignal | undefined) {
    ensureOpen();
    throwIfAborted(signal);
    if (!model.inSync) return { added: 0, removed: 0 };
    // Reading our routes starts first: it runs while the nftables text is rendered and applied.
    const listing = routes.readOwned(signal);
    listing.catch(() => undefined);
    const policyRun = policy.program(true, signal);
    policyRun.catch(() => undefined);
    const r = await routes.program(true, signal, "all", policyRun, listing);
    programmed = true;
    if (r.added + r.removed > 0) log.info({ added: r.added, removed: r.removed }, "reconciled routes");
    await policy.checkUnclaimed(signal);
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
      policy.close();
    });
  };

  return {
    get ipip() {
      return routes.ipip;
    },
    get unclaimedInterfaces() {
      return policy.unclaimedInterfaces;
    },
    get unresolvedRoutes() {
      return routes.unresolved;
    },
    apply(updates, callOptions = {}): Promise<ApplyResult> {
      const applied = queue(async () => {
        ensureOpen();
        throwIfAborted(callOptions.signal);
        const effect = model.applyBatch(updates);
        policy.note(updates);
        if (!model.inSync) return { inSync: false, programmed: false, warnings: [] };
        // The first in-sync reads the kernel (adopting a previous run's routes) and replaces the nftables
        // table atomically; later batches apply differences only.
        const first = effect.sawInSync && !programmed;
        let warnings: readonly string[] = [];
        // At the first in-sync, reading the kernel's routes overlaps with rendering the nftables table.
        const listing = first ? routes.readOwned(callOptions.signal) : undefined;
        const policyRun =
          first || effect.policyChanged ? policy.program(first, callOptions.signal) : undefined;
        // Handled here so an early failure elsewhere cannot leave them unobserved; still awaited below.
        listing?.catch(() => undefined);
        policyRun?.catch(() => undefined);
        if (first || effect.routesChanged) {
          const dirty = first ? "all" : effect.dirtyRoutes;
          const r = await routes.program(first, callOptions.signal, dirty, policyRun, listing);
          warnings = r.plan.warnings;
        } else await policyRun;
        programmed = true;
        if (first || updates.some((u) => u.kind === "workload-endpoint-remove"))
          await policy.checkUnclaimed(callOptions.signal);
        if (first) schedule();
        return { inSync: true, programmed: true, warnings };
      });
      applied.catch((e: unknown) => logRejectedBatch(log, updates, e));
      return applied;
    },
    reconcile(callOptions = {}) {
      return queue(() => reconcileNow(callOptions.signal));
    },
    snapshot(callOptions = {}): Promise<DataplaneSnapshot> {
      return queue(async () => {
        ensureOpen();
        const { routes: programmedRoutes, vteps } = await routes.snapshot(callOptions.signal);
        return {
          inSync: model.inSync,
          routes: programmedRoutes,
          vteps,
          ...(programmed ? policy.acceptedSnapshot() : { ...EMPTY_POLICY_SNAPSHOT, natPools: [] }),
        };
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
