/**
 * Argument checks of the IPAM client: every public call validates its input here, before it queues,
 * and answers bad input with an `invalid` {@link IpamError}.
 */
import type { IpamScope } from "./client-types.js";
import { IpamError, IpamErrorCode } from "./errors.js";
import type { AllocationAttributes } from "./types.js";

/** A handle id or node name: 1..200 characters of a safe set. */
export function checkName(what: string, value: unknown): string {
  if (typeof value !== "string" || !/^[A-Za-z0-9._:@+=~-]{1,200}$/.test(value)) {
    throw new IpamError(IpamErrorCode.Invalid, `invalid ${what}`, { details: { [what]: value } });
  }
  return value;
}

/** A count of addresses: an integer 0..4096; undefined is 0. */
export function checkCount(what: string, value: unknown): number {
  if (value === undefined) return 0;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 4096) {
    throw new IpamError(IpamErrorCode.Invalid, `invalid ${what}`, { details: { [what]: value } });
  }
  return value;
}

/** A check/gc scope: a valid node name and a non-empty handle prefix when given. */
export function checkScope(scope: IpamScope | undefined): IpamScope | undefined {
  if (scope === undefined) return undefined;
  if (typeof scope !== "object" || scope === null) {
    throw new IpamError(IpamErrorCode.Invalid, "invalid scope", { details: { scope } });
  }
  const out: IpamScope = {};
  if (scope.node !== undefined) out.node = checkName("node", scope.node);
  if (scope.handlePrefix !== undefined) {
    if (typeof scope.handlePrefix !== "string" || scope.handlePrefix === "") {
      throw new IpamError(IpamErrorCode.Invalid, "invalid handlePrefix", {
        details: { handlePrefix: scope.handlePrefix },
      });
    }
    out.handlePrefix = scope.handlePrefix;
  }
  return out;
}

/**
 * The secondary attributes stored with an allocation. The allocating node is always recorded (Calico's
 * `node` attribute): a node-scoped `gc` finds the addresses a node borrowed from other blocks by it.
 */
export function secondaryOf(
  attrs: AllocationAttributes | undefined,
  node: string | undefined,
): Record<string, string> | null {
  if (attrs !== undefined && (typeof attrs !== "object" || attrs === null)) {
    throw new IpamError(IpamErrorCode.Invalid, "invalid attrs", { details: { attrs } });
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs ?? {})) if (typeof v === "string") out[k] = v;
  if (node !== undefined) {
    if (out.node !== undefined && out.node !== node) {
      throw new IpamError(IpamErrorCode.Invalid, "attrs.node differs from the node assigning", {
        details: { node, attrsNode: out.node },
      });
    }
    out.node = node;
  }
  return Object.keys(out).length === 0 ? null : out;
}
