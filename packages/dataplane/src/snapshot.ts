import type { DataplaneSnapshot, ProgrammedVtep } from "./driver.js";
import type { PolicyState } from "./policy-state.js";
import type { RoutePlan } from "./routes/plan.js";

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
