/**
 * Network sets: named groups of CIDRs that policy selectors can match by label.
 *
 * @packageDocumentation
 */
import { type Ctx, joinPath, object } from "../validation/context.js";
import { cidr } from "../validation/net.js";
import { array, opt } from "../validation/primitives.js";
import type { KindDef } from "./kind-def.js";
import type { ObjectMeta, ResourceOf } from "./meta.js";

/** Spec of a {@link NetworkSet} or {@link GlobalNetworkSet}. */
export interface NetworkSetSpec {
  /** CIDRs (or addresses) of the set, canonical `network/len` (host bits are masked off). */
  nets?: string[];
}
/** A set of networks selectable by policies of its namespace. Namespaced. */
export type NetworkSet = ResourceOf<"NetworkSet", NetworkSetSpec>;
/** Spec of a {@link GlobalNetworkSet}. */
export type GlobalNetworkSetSpec = NetworkSetSpec;
/** A set of networks selectable by any policy. Cluster-scoped. */
export type GlobalNetworkSet = ResourceOf<"GlobalNetworkSet", GlobalNetworkSetSpec>;

function validateNetworkSetSpec(
  v: unknown,
  path: string,
  ctx: Ctx,
  meta: ObjectMeta,
): NetworkSetSpec | undefined {
  if (meta.labels !== undefined && Object.hasOwn(meta.labels, "projectcalico.org/namespace")) {
    ctx.fail(
      joinPath("metadata.labels", "projectcalico.org/namespace"),
      "reserved label; not allowed on network sets",
    );
  }
  const o = object(v, path, ctx, ["nets"]);
  if (o === undefined) return undefined;
  const out: NetworkSetSpec = {};
  opt(o, out, "nets", path, ctx, (x, p, c) =>
    array(x, p, c, (n, np, nc) => cidr(n, np, nc, { hostBits: "mask" })),
  );
  return out;
}

/** Kind definition of {@link NetworkSet}. */
export const networkSetDef: KindDef<"NetworkSet", NetworkSetSpec> = {
  kind: "NetworkSet",
  plural: "networksets",
  namespaced: true,
  nameRule: "subdomain",
  validateSpec: validateNetworkSetSpec,
  defaults: (spec) => ({ ...spec, nets: spec.nets ?? [] }),
};

/** Kind definition of {@link GlobalNetworkSet}. */
export const globalNetworkSetDef: KindDef<"GlobalNetworkSet", GlobalNetworkSetSpec> = {
  kind: "GlobalNetworkSet",
  plural: "globalnetworksets",
  namespaced: false,
  nameRule: "subdomain",
  validateSpec: validateNetworkSetSpec,
  defaults: (spec) => ({ ...spec, nets: spec.nets ?? [] }),
};
