import { DATAPLANE_DEFAULTS } from "../defaults.js";
import {
  type DataplaneDriver,
  type DataplaneSnapshot,
  type ProgrammedVtep,
  createSerialQueue,
} from "../driver.js";
import { DataplaneError, DataplaneErrorCode, throwIfAborted } from "../errors.js";
import { createDataplaneModel } from "../model.js";
import type { PolicyState } from "../policy-state.js";
import type { RoutePlan, RoutePlanOptions } from "../routes/plan.js";

/** Options of {@link createMemoryDataplane}. */
export interface MemoryDataplaneOptions {
  /** This host's node name. */
  readonly nodeName: string;
  /** VXLAN device name reported in next hops. Default: `vxlan.margay`. */
  readonly vxlanDevice?: string | undefined;
  /** Whether IPIP next hops are programmable. Default: `true`. */
  readonly ipipSupported?: boolean | undefined;
}

/** Builds a snapshot's route-side fields from a plan. */
export function routeSnapshotFromPlan(
  plan: RoutePlan | undefined,
): Pick<DataplaneSnapshot, "routes" | "vteps"> {
  if (plan === undefined) return { routes: [], vteps: [] };
  const routes = [...plan.routes.values()].sort((a, b) => (a.dst < b.dst ? -1 : a.dst > b.dst ? 1 : 0));
  const vteps: ProgrammedVtep[] = plan.neighbors
    .map((n) => ({
      address: n.address,
      mac: n.mac,
      underlay: plan.fdb.find((f) => f.mac === n.mac)?.dst ?? "",
    }))
    .sort((a, b) => (a.address < b.address ? -1 : 1));
  return { routes, vteps };
}

/**
 * The reference driver: keeps the model and "programs" it into memory. It shows the contract without a
 * kernel, backs unit tests of stream producers, and is what the protocol tests run in a child process.
 */
export function createMemoryDataplane(options: MemoryDataplaneOptions): DataplaneDriver {
  const model = createDataplaneModel();
  const queue = createSerialQueue();
  const planOptions: RoutePlanOptions = {
    nodeName: options.nodeName,
    vxlanDevice: options.vxlanDevice ?? DATAPLANE_DEFAULTS.vxlanDevice,
    vxlanVni: DATAPLANE_DEFAULTS.vxlanVni,
    vxlanPort: DATAPLANE_DEFAULTS.vxlanPort,
    vxlanMtu: DATAPLANE_DEFAULTS.vxlanMtu,
    ipipDevice: DATAPLANE_DEFAULTS.ipipDevice,
    ipipSupported: options.ipipSupported ?? true,
  };
  let programmed: RoutePlan | undefined;
  let closed = false;
  const ensureOpen = () => {
    if (closed) throw new DataplaneError(DataplaneErrorCode.Closed, "driver is closed");
  };
  const close = async () => {
    closed = true;
  };
  return {
    apply(updates, callOptions = {}) {
      return queue(async () => {
        ensureOpen();
        throwIfAborted(callOptions.signal);
        model.applyBatch(updates);
        if (!model.inSync) return { inSync: false, programmed: false, warnings: [] };
        programmed = model.planRoutes(planOptions);
        return { inSync: true, programmed: true, warnings: programmed.warnings };
      });
    },
    snapshot(callOptions = {}) {
      return queue(async () => {
        ensureOpen();
        throwIfAborted(callOptions.signal);
        return {
          inSync: model.inSync,
          ...routeSnapshotFromPlan(programmed),
          ...(programmed === undefined ? EMPTY_POLICY_SNAPSHOT : policySnapshot(model.policy)),
          natPools: programmed === undefined ? [] : natPools(model.routes.pools),
        };
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Sorted CIDRs of pools with natOutgoing. */
export function natPools(pools: ReadonlyMap<string, { readonly natOutgoing: boolean }>): string[] {
  return [...pools]
    .filter(([, p]) => p.natOutgoing)
    .map(([c]) => c)
    .sort();
}

/** The policy fields of a snapshot before anything is programmed. */
export const EMPTY_POLICY_SNAPSHOT: Pick<DataplaneSnapshot, "ipSets" | "policies" | "endpoints"> =
  Object.freeze({
    ipSets: [],
    policies: [],
    endpoints: [],
  });

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The policy fields of a snapshot from the model (IP sets, active policies, local endpoints). */
export function policySnapshot(p: PolicyState): Pick<DataplaneSnapshot, "ipSets" | "policies" | "endpoints"> {
  return {
    ipSets: [...p.ipSets]
      .map(([id, s]) => ({ id, members: [...s.members].sort(byString) }))
      .sort((a, b) => byString(a.id, b.id)),
    policies: [...p.policies.keys()].sort(byString),
    endpoints: [
      ...[...p.workloads.values()].map((w) => ({ id: w.id, ifname: w.ifname })),
      ...[...p.hosts.values()].map((h) => ({ id: h.id, ifname: h.ifname })),
    ].sort((a, b) => byString(a.id, b.id)),
  };
}
