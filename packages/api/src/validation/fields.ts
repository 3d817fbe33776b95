import type { SelectorNode } from "../selector/ast.js";
import { parseSelectorAst } from "../selector/parser.js";
import { isSelectorParseError } from "../selector/errors.js";
import { type Ctx, show, typeName } from "./context.js";

function containsGlobal(node: SelectorNode): boolean {
  switch (node.type) {
    case "global":
      return true;
    case "not":
      return containsGlobal(node.operand);
    case "and":
    case "or":
      return node.operands.some(containsGlobal);
    default:
      return false;
  }
}

/** Where `global()` may appear in a selector field. */
export type GlobalRule = "forbidden" | "alone";

/**
 * A selector expression (Calico syntax); the original text is kept. `global()` is forbidden unless
 * `global: "alone"` (an entity rule's namespaceSelector), where it must be the whole selector.
 */
export function selector(
  v: unknown,
  path: string,
  ctx: Ctx,
  opts: { global?: GlobalRule } = {},
): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a selector string, got ${typeName(v)}`);
  if (v.length > 1024) return ctx.fail(path, `selector must be at most 1024 characters, got ${v.length}`);
  let ast: SelectorNode;
  try {
    ast = parseSelectorAst(v);
  } catch (e) {
    if (!isSelectorParseError(e)) throw e;
    return ctx.fail(path, `invalid selector at position ${e.position}: ${e.details.reason}`);
  }
  if (containsGlobal(ast)) {
    if (opts.global !== "alone")
      return ctx.fail(path, "global() can only be used in an entity rule namespaceSelector");
    if (ast.type !== "global") return ctx.fail(path, "global() cannot be combined with other selectors");
  }
  return v;
}

/**
 * An AS number: an integer 0..4294967295, or a string in plain (`"64512"`) or dotted (`"1.10"`,
 * RFC 5396 asdot) notation. Canonicalised to a number.
 */
export function asNumber(v: unknown, path: string, ctx: Ctx): number | undefined {
  if (typeof v === "number") {
    return Number.isInteger(v) && v >= 0 && v <= 0xffffffff
      ? v
      : ctx.fail(path, `AS number must be an integer 0..4294967295, got ${show(v)}`);
  }
  if (typeof v === "string") {
    const n = parseAsNumber(v);
    return n !== undefined ? n : ctx.fail(path, `invalid AS number ${show(v)}`);
  }
  return ctx.fail(path, `expected an AS number, got ${typeName(v)}`);
}

/** Parses an AS number in plain or asdot notation; undefined if invalid. */
export function parseAsNumber(s: string): number | undefined {
  if (/^\d{1,10}$/.test(s)) {
    const n = Number(s);
    return n <= 0xffffffff ? n : undefined;
  }
  const m = /^(\d{1,5})\.(\d{1,5})$/.exec(s);
  if (m === null) return undefined;
  const hi = Number(m[1]);
  const lo = Number(m[2]);
  return hi <= 0xffff && lo <= 0xffff ? hi * 65536 + lo : undefined;
}

const DURATION = /^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/;
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Parses a Go duration string (`"90s"`, `"1m30s"`, `"250ms"`) into milliseconds; undefined if invalid. */
export function parseGoDuration(s: string): number | undefined {
  if (s === "0") return 0;
  if (!DURATION.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g))
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
  return total;
}

/** A Go duration string (as Calico's `metav1.Duration` fields take), kept as written. */
export function duration(v: unknown, path: string, ctx: Ctx): string | undefined {
  if (typeof v !== "string")
    return ctx.fail(path, `expected a duration string such as "90s", got ${typeName(v)}`);
  return parseGoDuration(v) !== undefined
    ? v
    : ctx.fail(path, `invalid duration ${show(v)} (e.g. "90s", "1m30s")`);
}
