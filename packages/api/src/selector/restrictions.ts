import type { SelectorNode } from "./ast.js";
import { compareCodePoints, toSortedSet } from "./ast.js";

/**
 * What a selector requires of one label for it to match: the input an index needs to find candidate
 * selectors for a label set without evaluating every selector.
 */
export interface LabelRestriction {
  /** The label must be present (e.g. `has(a)`, `a == "x"`). */
  readonly mustBePresent: boolean;
  /** The label must be absent (e.g. `!has(a)`). Both flags set means the selector can never match. */
  readonly mustBeAbsent: boolean;
  /**
   * If set, the label's value must be one of these (sorted). An empty array means the selector cannot
   * match at all (e.g. `a == "x" && a == "y"`). Absent when no value restriction is known.
   */
  readonly mustHaveOneOfValues?: readonly string[];
}

/** Label name → restriction. Labels without a restriction are not in the map. */
export type LabelRestrictions = ReadonlyMap<string, LabelRestriction>;

interface Mutable {
  mustBePresent: boolean;
  mustBeAbsent: boolean;
  values: string[] | undefined;
}

function collect(node: SelectorNode): Map<string, Mutable> {
  switch (node.type) {
    case "eq":
      return new Map([[node.label, { mustBePresent: true, mustBeAbsent: false, values: [node.value] }]]);
    case "in":
      return new Map([[node.label, { mustBePresent: true, mustBeAbsent: false, values: [...node.values] }]]);
    case "has":
    case "contains":
    case "startsWith":
    case "endsWith":
      return new Map([[node.label, { mustBePresent: true, mustBeAbsent: false, values: undefined }]]);
    case "not":
      // Only `!has(a)` inverts cleanly; `!(a == "x")` does not require `a` to be absent.
      if (node.operand.type === "has") {
        return new Map([
          [node.operand.label, { mustBePresent: false, mustBeAbsent: true, values: undefined }],
        ]);
      }
      return new Map();
    case "and": {
      const out = new Map<string, Mutable>();
      for (const op of node.operands) {
        for (const [label, r] of collect(op)) {
          const base = out.get(label);
          if (base === undefined) {
            out.set(label, r);
            continue;
          }
          base.mustBePresent ||= r.mustBePresent;
          base.mustBeAbsent ||= r.mustBeAbsent;
          if (base.values === undefined) base.values = r.values;
          else if (r.values !== undefined) {
            const keep = new Set(r.values);
            base.values = base.values.filter((v) => keep.has(v));
          }
        }
      }
      return out;
    }
    case "or": {
      const out = collect(node.operands[0]!);
      for (const op of node.operands.slice(1)) {
        const other = collect(op);
        for (const [label, r] of out) {
          const o = other.get(label);
          r.mustBePresent &&= o?.mustBePresent === true;
          if (!r.mustBePresent || r.values === undefined || o?.values === undefined) {
            // Either side accepts any value (or the label may be absent): no value restriction survives.
            r.values = undefined;
          } else {
            r.values = [...r.values, ...o.values];
          }
          r.mustBeAbsent &&= o?.mustBeAbsent === true;
          if (!r.mustBePresent && !r.mustBeAbsent) out.delete(label);
        }
      }
      return out;
    }
    default:
      // all(), global(), `!=` and `not in` restrict nothing (they match when the label is absent).
      return new Map();
  }
}

/**
 * Derives per-label restrictions from a selector tree with Calico's `LabelRestrictions()` rules: `&&`
 * accumulates (value sets intersect), `||` keeps only what every branch requires (value sets unite),
 * and `!` only inverts `has()`.
 */
export function labelRestrictions(node: SelectorNode): LabelRestrictions {
  const out = new Map<string, LabelRestriction>();
  const collected = [...collect(node)].sort(([a], [b]) => compareCodePoints(a, b));
  for (const [label, r] of collected) {
    out.set(
      label,
      r.values === undefined
        ? { mustBePresent: r.mustBePresent, mustBeAbsent: r.mustBeAbsent }
        : {
            mustBePresent: r.mustBePresent,
            mustBeAbsent: r.mustBeAbsent,
            mustHaveOneOfValues: toSortedSet(r.values),
          },
    );
  }
  return out;
}
