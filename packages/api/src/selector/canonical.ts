import { createHash } from "node:crypto";
import type { SelectorNode } from "./ast.js";

const valueOpText = {
  eq: " == ",
  ne: " != ",
  contains: " contains ",
  startsWith: " starts with ",
  endsWith: " ends with ",
} as const;

// A literal cannot contain its own delimiter, so a value holding `"` is always free of `'`.
const quote = (s: string): string => (s.includes('"') ? `'${s}'` : `"${s}"`);

/**
 * The canonical text of a selector tree, byte-for-byte what Calico's `Selector.String()` prints:
 * `&&`/`||` groups are always parenthesised, set members sorted, literals double-quoted unless they
 * contain `"`. Parsing the canonical text yields the same tree. One deliberate exception: `!(!x)` is
 * printed `x` (Calico prints `!!x`, which it re-parses as `x`), so the canonical text is a fixed point.
 */
export function canonicalSelector(node: SelectorNode): string {
  switch (node.type) {
    case "all":
      return "all()";
    case "global":
      return "global()";
    case "has":
      return `has(${node.label})`;
    case "eq":
    case "ne":
    case "contains":
    case "startsWith":
    case "endsWith":
      return `${node.label}${valueOpText[node.type]}${quote(node.value)}`;
    case "in":
    case "notIn":
      return `${node.label} ${node.type === "in" ? "in" : "not in"} {${node.values.map(quote).join(", ")}}`;
    case "not":
      return `!${canonicalSelector(node.operand)}`;
    case "and":
    case "or":
      return `(${node.operands.map(canonicalSelector).join(node.type === "and" ? " && " : " || ")})`;
  }
}

/**
 * Stable id of a selector: `s:` + unpadded base64url SHA-224 of `s:<canonical>`, the same value as
 * Calico's `Selector.UniqueID()` for the same canonical text, so ids (and IP set names derived from
 * them) match Calico's, except for selectors holding `!(!x)` (see {@link canonicalSelector}).
 */
export function selectorUniqueId(canonical: string): string {
  return `s:${createHash("sha224").update(`s:${canonical}`, "utf8").digest("base64url")}`;
}
