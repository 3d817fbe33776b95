import type { SelectorNode } from "./ast.js";

/**
 * Labels a selector is evaluated against: a plain record or a `Map`. Only own properties of a record
 * count (so `constructor` or `__proto__` are never "present" unless really set).
 */
export type Labels = Readonly<Record<string, string>> | ReadonlyMap<string, string>;

function lookup(labels: Labels, name: string): string | undefined {
  if (labels instanceof Map) return labels.get(name);
  if (!Object.hasOwn(labels, name)) return undefined;
  const v = (labels as Readonly<Record<string, unknown>>)[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * Evaluates a selector tree against labels with Calico's rules: `==`, `in`, `contains`, `starts with`,
 * `ends with` and `has()` need the label present; `!=` and `not in` match when it is absent.
 */
export function evaluateSelector(node: SelectorNode, labels: Labels): boolean {
  switch (node.type) {
    case "all":
    case "global":
      return true;
    case "has":
      return lookup(labels, node.label) !== undefined;
    case "eq": {
      const v = lookup(labels, node.label);
      return v !== undefined && v === node.value;
    }
    case "ne":
      return lookup(labels, node.label) !== node.value;
    case "contains": {
      const v = lookup(labels, node.label);
      return v === undefined ? false : v.includes(node.value);
    }
    case "startsWith": {
      const v = lookup(labels, node.label);
      return v === undefined ? false : v.startsWith(node.value);
    }
    case "endsWith": {
      const v = lookup(labels, node.label);
      return v === undefined ? false : v.endsWith(node.value);
    }
    case "in": {
      const v = lookup(labels, node.label);
      return v !== undefined && node.values.includes(v);
    }
    case "notIn": {
      const v = lookup(labels, node.label);
      return v === undefined || !node.values.includes(v);
    }
    case "not":
      return !evaluateSelector(node.operand, labels);
    case "and":
      return node.operands.every((op) => evaluateSelector(op, labels));
    case "or":
      return node.operands.some((op) => evaluateSelector(op, labels));
  }
}
