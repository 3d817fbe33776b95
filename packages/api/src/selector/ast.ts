/**
 * The selector syntax tree. Node shapes mirror Calico's parser nodes one to one, so evaluation, the
 * canonical string and label restrictions follow Calico's rules exactly.
 *
 * @packageDocumentation
 */

/** `all()` (and the empty selector): matches everything. */
export interface AllNode {
  /** Discriminant. */
  readonly type: "all";
}
/** `global()`: matches everything; in a namespace selector it also selects non-namespaced resources. */
export interface GlobalNode {
  /** Discriminant. */
  readonly type: "global";
}
/** `has(label)`: the label is present (with any value). */
export interface HasNode {
  /** Discriminant. */
  readonly type: "has";
  /** The label key. */
  readonly label: string;
}
/** A comparison of one label with one string literal. */
export interface LabelValueNode {
  /**
   * `eq` (`==`), `ne` (`!=`), `contains`, `startsWith` (`starts with`), `endsWith` (`ends with`).
   * Only `ne` matches when the label is absent.
   */
  readonly type: "eq" | "ne" | "contains" | "startsWith" | "endsWith";
  /** The label key. */
  readonly label: string;
  /** The string literal compared with the label value. */
  readonly value: string;
}
/** `label in {...}` / `label not in {...}`; only `notIn` matches when the label is absent. */
export interface LabelSetNode {
  /** `in` or `notIn` (`not in`). */
  readonly type: "in" | "notIn";
  /** The label key. */
  readonly label: string;
  /** Sorted (by UTF-8 byte order, as Go sorts strings) and de-duplicated. */
  readonly values: readonly string[];
}
/** `!operand`. */
export interface NotNode {
  /** Discriminant. */
  readonly type: "not";
  /** The negated expression. */
  readonly operand: SelectorNode;
}
/** `a && b && ...` (two or more operands) or `a || b || ...`. */
export interface BoolNode {
  /** `and` (`&&`) or `or` (`||`). */
  readonly type: "and" | "or";
  /** Two or more operands, in source order. */
  readonly operands: readonly SelectorNode[];
}

/** Any node of a parsed selector. */
export type SelectorNode =
  | AllNode
  | GlobalNode
  | HasNode
  | LabelValueNode
  | LabelSetNode
  | NotNode
  | BoolNode;

/** Compares strings by Unicode code point, which is UTF-8 byte order (Go's string order). */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x < y ? -1 : 1;
    if (x > 0xffff) i++;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

/** Sorts and de-duplicates set members the way Calico's `StringSet` does. */
export function toSortedSet(values: readonly string[]): string[] {
  const sorted = [...values].sort(compareCodePoints);
  return sorted.filter((v, i) => i === 0 || v !== sorted[i - 1]);
}
