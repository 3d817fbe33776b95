import type { PolicyUpdate } from "@margay/dataplane-contract";
import { DataplaneError, DataplaneErrorCode, isDataplaneError } from "./errors.js";
import {
  type PolicyState,
  applyPolicyUpdate,
  batchIpSets,
  createPolicyState,
  validatePolicyUpdate,
} from "./policy-state.js";
import {
  type RoutePlan,
  type RoutePlanOptions,
  type RouteState,
  applyRouteSideUpdate,
  createRouteState,
  normalizeRouteSideUpdate,
  planRoutes,
} from "./routes/plan.js";
import { type DataplaneUpdate, POLICY_KINDS } from "./stream.js";
import { ROUTE_SIDE_KINDS, type RouteSideUpdate } from "./updates.js";

const ROUTE_KINDS: ReadonlySet<string> = new Set(ROUTE_SIDE_KINDS);
/** Update kinds that belong to the policy half of the model. */
export const POLICY_KIND_SET: ReadonlySet<string> = new Set(POLICY_KINDS);

/** What a batch touched, so a driver can skip work for the half that did not change. */
export interface BatchEffect {
  /** The batch contained `in-sync`. */
  readonly sawInSync: boolean;
  /** Route-side state changed (routes, VTEPs, pools, hosts). */
  readonly routesChanged: boolean;
  /** Policy state changed (or pools, which feed NAT). */
  readonly policyChanged: boolean;
  /** Route dsts whose update or removal the batch carried, or `all` when hosts, VTEPs or pools changed. */
  readonly dirtyRoutes: ReadonlySet<string> | "all";
}

/** The driver-independent model of the stream: validation, last-value state, in-sync tracking. */
export interface DataplaneModel {
  /** Whether an in-sync barrier has been applied. */
  readonly inSync: boolean;
  /** Route-side state. */
  readonly routes: RouteState;
  /** Policy state. */
  readonly policy: PolicyState;
  /**
   * Validates the whole batch, then applies it. Throws `invalid-update` (with the index of the bad update
   * in `details.index`) without changing the model if any update is invalid.
   */
  applyBatch(updates: readonly DataplaneUpdate[]): BatchEffect;
  /** The route plan of the current state (only `incremental.dsts` recomputed when given). */
  planRoutes(
    options: RoutePlanOptions,
    incremental?: { readonly prev: RoutePlan; readonly dsts: Iterable<string> },
  ): RoutePlan;
}

/** Creates an empty {@link DataplaneModel}. */
export function createDataplaneModel(): DataplaneModel {
  const routes = createRouteState();
  const policy = createPolicyState();
  let inSync = false;
  return {
    get inSync() {
      return inSync;
    },
    routes,
    policy,
    applyBatch(updates) {
      if (!Array.isArray(updates)) {
        throw new DataplaneError(DataplaneErrorCode.InvalidUpdate, "a batch must be an array");
      }
      const sets = batchIpSets(policy.ipSets);
      const normalized = updates.map((u, index): DataplaneUpdate => {
        const kind = (u as { kind?: unknown } | null)?.kind;
        try {
          if (typeof kind === "string" && ROUTE_KINDS.has(kind))
            return normalizeRouteSideUpdate(u as RouteSideUpdate);
          if (typeof kind === "string" && POLICY_KIND_SET.has(kind)) {
            validatePolicyUpdate(u as PolicyUpdate, sets);
            return u;
          }
        } catch (e) {
          if (isDataplaneError(e)) {
            throw new DataplaneError(e.code, e.message, { details: { ...e.details, index }, cause: e });
          }
          throw e;
        }
        throw new DataplaneError(DataplaneErrorCode.InvalidUpdate, "unknown update kind", {
          details: { index, kind },
        });
      });
      let sawInSync = false;
      let routesChanged = false;
      let policyChanged = false;
      let dirtyRoutes: Set<string> | "all" = new Set();
      for (const u of normalized) {
        if (u.kind === "in-sync") sawInSync = true;
        else if (ROUTE_KINDS.has(u.kind)) {
          applyRouteSideUpdate(routes, u as RouteSideUpdate);
          routesChanged = true;
          if (u.kind === "route-update" || u.kind === "route-remove") {
            if (dirtyRoutes !== "all") dirtyRoutes.add(u.dst);
          } else dirtyRoutes = "all";
          if (u.kind === "pool-update" || u.kind === "pool-remove") policyChanged = true;
        } else {
          applyPolicyUpdate(policy, u as PolicyUpdate);
          policyChanged = true;
        }
      }
      if (sawInSync) inSync = true;
      return { sawInSync, routesChanged, policyChanged, dirtyRoutes };
    },
    planRoutes(options, incremental) {
      return planRoutes(routes, options, incremental);
    },
  };
}
