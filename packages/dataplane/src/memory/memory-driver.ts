import { DATAPLANE_DEFAULTS } from "../defaults.js";
import { type DataplaneDriver, createSerialQueue } from "../driver.js";
import { DataplaneError, DataplaneErrorCode, throwIfAborted } from "../errors.js";
import { createDataplaneModel } from "../model.js";
import type { RoutePlan, RoutePlanOptions } from "../routes/plan.js";
import { EMPTY_POLICY_SNAPSHOT, natPools, policySnapshot, routeSnapshotFromPlan } from "../snapshot.js";

/** Options of {@link createMemoryDataplane}. */
export interface MemoryDataplaneOptions {
  /** This host's node name. */
  readonly nodeName: string;
  /** VXLAN device name reported in next hops. Default: `vxlan.margay`. */
  readonly vxlanDevice?: string | undefined;
  /** Whether IPIP next hops are programmable. Default: `true`. */
  readonly ipipSupported?: boolean | undefined;
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
