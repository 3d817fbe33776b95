import { SelectorParseError } from "./errors.js";

/** Token kinds of the selector language (Calico's tokenizer has the same set). */
export const SelectorTokenKind = {
  /** A label key. */
  Label: "label",
  /** A string literal (value without quotes). */
  String: "string",
  /** `{` */
  LBrace: "{",
  /** `}` */
  RBrace: "}",
  /** `,` */
  Comma: ",",
  /** `==` */
  Eq: "==",
  /** `!=` */
  Ne: "!=",
  /** `in` */
  In: "in",
  /** `not in` */
  NotIn: "not in",
  /** `!` */
  Not: "!",
  /** `contains` */
  Contains: "contains",
  /** `starts with` */
  StartsWith: "starts with",
  /** `ends with` */
  EndsWith: "ends with",
  /** `all()` */
  All: "all()",
  /** `global()` */
  Global: "global()",
  /** `has(label)` (value: the label). */
  Has: "has()",
  /** `(` */
  LParen: "(",
  /** `)` */
  RParen: ")",
  /** `&&` */
  And: "&&",
  /** `||` */
  Or: "||",
  /** End of input. */
  EOF: "eof",
} as const;
/** Union of {@link SelectorTokenKind} values. */
export type SelectorTokenKind = (typeof SelectorTokenKind)[keyof typeof SelectorTokenKind];

/** One token with its source span. */
export interface SelectorToken {
  /** What the token is. */
  readonly kind: SelectorTokenKind;
  /** Label name (for `label` and `has()`) or literal value (for `string`); empty otherwise. */
  readonly value: string;
  /** Offset of the token's first character in the input. */
  readonly start: number;
}

// Calico trims only spaces and tabs; a newline inside a selector is an "unexpected character" there too.
const isWhitespace = (c: string): boolean => c === " " || c === "\t";

function isLabelChar(c: number): boolean {
  return (
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x5f || // _
    c === 0x2e || // .
    c === 0x2f || // /
    c === 0x2d // -
  );
}

/** Length of the label key starting at `pos` (0 if none). */
function labelLength(input: string, pos: number): number {
  let i = pos;
  while (i < input.length && isLabelChar(input.charCodeAt(i))) i++;
  return i - pos;
}

/**
 * Splits a selector into tokens, following Calico's tokenizer: whitespace is space/tab, label keys are
 * `[a-zA-Z0-9_./-]+`, string literals use single or double quotes with no escapes, and the word
 * operators (`in`, `not in`, `contains`, `starts with`, `ends with`) are only recognised right after a
 * label (so a label may itself be called `in` or `contains`).
 *
 * @throws {@link SelectorParseError} on any lexical error.
 */
export function tokenizeSelector(input: string): SelectorToken[] {
  const tokens: SelectorToken[] = [];
  const fail = (position: number, reason: string): never => {
    throw new SelectorParseError({ selector: input, position, reason });
  };
  const skipWs = (p: number): number => {
    while (p < input.length && isWhitespace(input[p]!)) p++;
    return p;
  };
  let pos = 0;
  for (;;) {
    pos = skipWs(pos);
    if (pos >= input.length) {
      tokens.push({ kind: SelectorTokenKind.EOF, value: "", start: pos });
      return tokens;
    }
    const start = pos;
    const push = (kind: SelectorTokenKind, end: number, value = ""): void => {
      tokens.push({ kind, value, start });
      pos = end;
    };
    const c = input[pos]!;
    switch (c) {
      case "(":
        push(SelectorTokenKind.LParen, pos + 1);
        continue;
      case ")":
        push(SelectorTokenKind.RParen, pos + 1);
        continue;
      case "{":
        push(SelectorTokenKind.LBrace, pos + 1);
        continue;
      case "}":
        push(SelectorTokenKind.RBrace, pos + 1);
        continue;
      case ",":
        push(SelectorTokenKind.Comma, pos + 1);
        continue;
      case '"':
      case "'": {
        const close = input.indexOf(c, pos + 1);
        if (close === -1) fail(start, "unterminated string");
        push(SelectorTokenKind.String, close + 1, input.slice(pos + 1, close));
        continue;
      }
      case "=":
        if (input[pos + 1] !== "=") fail(start, "expected ==");
        push(SelectorTokenKind.Eq, pos + 2);
        continue;
      case "!":
        if (input[pos + 1] === "=") push(SelectorTokenKind.Ne, pos + 2);
        else push(SelectorTokenKind.Not, pos + 1);
        continue;
      case "&":
        if (input[pos + 1] !== "&") fail(start, "expected &&");
        push(SelectorTokenKind.And, pos + 2);
        continue;
      case "|":
        if (input[pos + 1] !== "|") fail(start, "expected ||");
        push(SelectorTokenKind.Or, pos + 2);
        continue;
    }
    const last = tokens.length > 0 ? tokens[tokens.length - 1]!.kind : undefined;
    if (last === SelectorTokenKind.Label) {
      // Right after a label only an operator may follow.
      const expectOp = (): never =>
        fail(
          start,
          `unexpected characters after label '${tokens[tokens.length - 1]!.value}', expected an operator`,
        );
      const startsAt = (word: string, p: number): boolean => input.startsWith(word, p);
      if (startsAt("contains", pos)) {
        push(SelectorTokenKind.Contains, pos + "contains".length);
      } else if (startsAt("starts", pos)) {
        const p = skipWs(pos + "starts".length);
        if (!startsAt("with", p)) expectOp();
        push(SelectorTokenKind.StartsWith, p + "with".length);
      } else if (startsAt("ends", pos)) {
        const p = skipWs(pos + "ends".length);
        if (!startsAt("with", p)) expectOp();
        push(SelectorTokenKind.EndsWith, p + "with".length);
      } else if (startsAt("not", pos)) {
        const p = skipWs(pos + "not".length);
        if (!startsAt("in", p)) expectOp();
        push(SelectorTokenKind.NotIn, p + "in".length);
      } else if (startsAt("in", pos)) {
        push(SelectorTokenKind.In, pos + "in".length);
      } else {
        expectOp();
      }
      continue;
    }
    if (input.startsWith("has(", pos)) {
      const p = skipWs(pos + "has(".length);
      const n = labelLength(input, p);
      if (n === 0) fail(p, "no label name in has( expression");
      const q = skipWs(p + n);
      if (input[q] !== ")") fail(q, "no closing ')' after has(");
      push(SelectorTokenKind.Has, q + 1, input.slice(p, p + n));
    } else if (input.startsWith("all(", pos)) {
      const p = skipWs(pos + "all(".length);
      if (input[p] !== ")") fail(p, "no closing ')' after all(");
      push(SelectorTokenKind.All, p + 1);
    } else if (input.startsWith("global(", pos)) {
      const p = skipWs(pos + "global(".length);
      if (input[p] !== ")") fail(p, "no closing ')' after global(");
      push(SelectorTokenKind.Global, p + 1);
    } else {
      const n = labelLength(input, pos);
      if (n === 0) fail(start, `unexpected character ${JSON.stringify(c)}`);
      push(SelectorTokenKind.Label, pos + n, input.slice(pos, pos + n));
    }
  }
}
