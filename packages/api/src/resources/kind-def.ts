import type { Ctx } from "../validation/context.js";
import type { NameRule } from "../validation/names.js";
import type { ObjectMeta } from "./meta.js";

/** Per-kind facts and behaviour; one per resource kind, used by validation, defaults and I/O. */
export interface KindDef<K extends string = string, S = unknown> {
  readonly kind: K;
  /** Lower-case plural (`ippools`), as in Calico's REST paths. */
  readonly plural: string;
  /** Namespaced kinds require `metadata.namespace`; cluster-scoped kinds forbid it. */
  readonly namespaced: boolean;
  /** Naming rule of `metadata.name`. */
  readonly nameRule: NameRule;
  /** Validates and canonicalises `spec` (absent spec is passed as `{}`). */
  validateSpec(v: unknown, path: string, ctx: Ctx, meta: ObjectMeta): S | undefined;
  /**
   * Validates and canonicalises `status`, for kinds that carry an observed state (e.g. `NodeStatus`).
   * Kinds without it reject a `status` field as unknown.
   */
  validateStatus?(v: unknown, path: string, ctx: Ctx): unknown;
  /** Returns a copy of a valid spec with every defaultable field filled in. */
  defaults(spec: S, meta: ObjectMeta): S;
}
