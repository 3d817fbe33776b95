/**
 * Route-side updates keyed by what they are about, so several diffs coalesce to the last word per key and
 * the programmed set can be kept as a map.
 *
 * @packageDocumentation
 */
import type { RouteSideUpdate } from "@margay/dataplane-contract";
import type { RoutingUpdate } from "@margay/routing";

/**
 * The key of a route-side update: the destination CIDR for routes (`route-update`/`route-remove`), and
 * `host:<node>`, `vtep:<node>`, `pool:<cidr>` for the others (never a valid CIDR, so never a clash).
 */
export function routeSideKey(u: RoutingUpdate): string {
  switch (u.kind) {
    case "route-update":
    case "route-remove":
      return u.dst;
    case "host-update":
    case "host-remove":
      return `host:${u.node}`;
    case "vtep-update":
    case "vtep-remove":
      return `vtep:${u.node}`;
    case "pool-update":
    case "pool-remove":
      return `pool:${u.cidr}`;
  }
}

// The route calculator's stream order: what routes depend on (pools, hosts, VTEPs) first, then routes,
// then removals in reverse dependency order.
const RANK: Readonly<Record<RoutingUpdate["kind"], number>> = {
  "pool-update": 0,
  "host-update": 1,
  "vtep-update": 2,
  "route-update": 3,
  "route-remove": 4,
  "vtep-remove": 5,
  "host-remove": 6,
  "pool-remove": 7,
};

/** Sorts coalesced updates into the stream's order (by kind rank, then key). */
export function sortRouteSide(updates: Iterable<RoutingUpdate>): RoutingUpdate[] {
  return [...updates].sort((a, b) => {
    const r = RANK[a.kind] - RANK[b.kind];
    if (r !== 0) return r;
    const ka = routeSideKey(a);
    const kb = routeSideKey(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** True for a removal (`*-remove`). */
export function isRemoval(u: RouteSideUpdate): boolean {
  return u.kind.endsWith("-remove");
}
