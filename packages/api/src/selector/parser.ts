import type { LabelValueNode, SelectorNode } from "./ast.js";
import { toSortedSet } from "./ast.js";
import { SelectorParseError } from "./errors.js";
import { type SelectorToken, SelectorTokenKind as K, tokenizeSelector } from "./tokenizer.js";

/**
 * Maximum parenthesis nesting accepted. Calico has no limit (Go stacks grow); a JS call stack does not,
 * so deeper input is rejected with a typed error rather than a `RangeError`.
 */
export const MAX_SELECTOR_NESTING = 200;

const valueOps: Partial<Record<string, LabelValueNode["type"]>> = {
  [K.Eq]: "eq",
  [K.Ne]: "ne",
  [K.Contains]: "contains",
  [K.StartsWith]: "startsWith",
  [K.EndsWith]: "endsWith",
};

/**
 * Parses a selector into its syntax tree with Calico's grammar: `||` binds loosest, then `&&`, then
 * prefix `!` (which applies to a single operation or parenthesised group; repeated `!` collapse).
 * The empty (or all-whitespace) selector is `all()`.
 *
 * @throws {@link SelectorParseError} for any invalid input, with the offending position.
 */
export function parseSelectorAst(input: string): SelectorNode {
  if (typeof input !== "string") {
    throw new SelectorParseError({
      selector: String(input),
      position: 0,
      reason: "selector must be a string",
    });
  }
  const tokens = tokenizeSelector(input);
  let i = 0;
  let depth = 0;
  const fail = (tok: SelectorToken, reason: string): never => {
    throw new SelectorParseError({ selector: input, position: tok.start, reason });
  };
  const describe = (tok: SelectorToken): string =>
    tok.kind === K.EOF
      ? "end of selector"
      : tok.kind === K.Label || tok.kind === K.String
        ? `${tok.kind} ${JSON.stringify(tok.value)}`
        : `'${tok.kind}'`;

  const parseOr = (): SelectorNode => {
    const operands = [parseAnd()];
    while (tokens[i]!.kind === K.Or) {
      i++;
      operands.push(parseAnd());
    }
    return operands.length === 1 ? operands[0]! : { type: "or", operands };
  };
  const parseAnd = (): SelectorNode => {
    const operands = [parseOperation()];
    while (tokens[i]!.kind === K.And) {
      i++;
      operands.push(parseOperation());
    }
    return operands.length === 1 ? operands[0]! : { type: "and", operands };
  };
  const parseOperation = (): SelectorNode => {
    let negated = false;
    while (tokens[i]!.kind === K.Not) {
      negated = !negated;
      i++;
    }
    const node = parseTerm();
    if (!negated) return node;
    // `!(!x)`: Calico keeps both negations and prints `!!x`, which re-parses as `x`, so its canonical text
    // is not a fixed point. Eliminating the double negation here makes canonical(parse(canonical(s)))
    // stable; the result is exactly what Calico reaches after one more round trip.
    return node.type === "not" ? node.operand : { type: "not", operand: node };
  };
  const parseTerm = (): SelectorNode => {
    const tok = tokens[i]!;
    switch (tok.kind) {
      case K.Has:
        i++;
        return { type: "has", label: tok.value };
      case K.All:
        i++;
        return { type: "all" };
      case K.Global:
        i++;
        return { type: "global" };
      case K.LParen: {
        if (++depth > MAX_SELECTOR_NESTING)
          fail(tok, `parentheses nested deeper than ${MAX_SELECTOR_NESTING}`);
        i++;
        const inner = parseOr();
        if (tokens[i]!.kind !== K.RParen) fail(tokens[i]!, `expected ')', found ${describe(tokens[i]!)}`);
        i++;
        depth--;
        return inner;
      }
      case K.Label:
        return parseComparison(tok);
      default:
        return fail(tok, `unexpected ${describe(tok)}`);
    }
  };
  const parseComparison = (labelTok: SelectorToken): SelectorNode => {
    const opTok = tokens[i + 1]!;
    const label = labelTok.value;
    const valueOp = valueOps[opTok.kind];
    if (valueOp !== undefined) {
      const lit = tokens[i + 2]!;
      if (lit.kind !== K.String) fail(lit, `expected a string literal after '${opTok.kind}'`);
      i += 3;
      return { type: valueOp, label, value: lit.value };
    }
    if (opTok.kind === K.In || opTok.kind === K.NotIn) {
      if (tokens[i + 2]!.kind !== K.LBrace)
        fail(tokens[i + 2]!, `expected a set literal after '${opTok.kind}'`);
      i += 3;
      const values: string[] = [];
      // Calico accepts `{}` and a trailing comma (`{"a",}`).
      while (tokens[i]!.kind === K.String) {
        values.push(tokens[i]!.value);
        i++;
        if (tokens[i]!.kind !== K.Comma) break;
        i++;
      }
      if (tokens[i]!.kind !== K.RBrace) fail(tokens[i]!, `expected '}', found ${describe(tokens[i]!)}`);
      i++;
      return { type: opTok.kind === K.In ? "in" : "notIn", label, values: toSortedSet(values) };
    }
    return fail(opTok, `expected an operator after label ${JSON.stringify(label)}, found ${describe(opTok)}`);
  };

  if (tokens[0]!.kind === K.EOF) return { type: "all" };
  const root = parseOr();
  if (tokens[i]!.kind !== K.EOF) fail(tokens[i]!, `unexpected ${describe(tokens[i]!)} after expression`);
  return root;
}
