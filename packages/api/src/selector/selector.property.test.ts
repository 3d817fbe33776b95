import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isSelectorParseError, parseSelector, tryParseSelector } from "./index.js";

const labelKeys = ["a", "b", "c", "app.kubernetes.io/name", "x-y_z"];
const values = ["", "x", "y", "xy", "'", '"', "a b", "ü"];

/** Random label sets over a small key/value space, so selectors hit both present and absent labels. */
const labelsArb = fc.dictionary(fc.constantFrom(...labelKeys), fc.constantFrom(...values), { maxKeys: 5 });

const quoted = (v: string): string => (v.includes("'") ? `"${v}"` : `'${v}'`);
const key = fc.constantFrom(...labelKeys);
const val = fc.constantFrom(...values);

/** Random well-formed selector text, with random spacing, redundant parens and repeated `!`. */
const selectorArb: fc.Arbitrary<string> = fc.letrec<{ expr: string }>((tie) => ({
  expr: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant("all()"),
    fc.constant("global()"),
    key.map((k) => `has(${k})`),
    fc
      .tuple(key, fc.constantFrom("==", "!=", "contains", "starts with", "ends with", "startswith"), val)
      .map(([k, op, v]) => `${k} ${op} ${quoted(v)}`),
    fc
      .tuple(key, fc.constantFrom("in", "not in"), fc.array(val, { maxLength: 4 }))
      .map(([k, op, vs]) => `${k} ${op} {${vs.map(quoted).join(",")}}`),
    fc.tuple(fc.integer({ min: 1, max: 3 }), tie("expr")).map(([n, e]) => `${"!".repeat(n)}(${e})`),
    fc
      .tuple(tie("expr"), fc.constantFrom("&&", "||", " && ", " || "), tie("expr"))
      .map(([a, op, b]) => `${a}${op}${b}`),
    tie("expr").map((e) => `( ${e} )`),
  ),
})).expr;

describe("selector properties", () => {
  it("arbitrary strings either parse or fail with SelectorParseError", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: "grapheme-ascii", maxLength: 60 }),
          fc.string({ unit: "binary", maxLength: 30 }),
        ),
        (s) => {
          try {
            parseSelector(s);
          } catch (e) {
            if (!isSelectorParseError(e)) throw e;
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("strings built from selector tokens either parse or fail with SelectorParseError", () => {
    const piece = fc.constantFrom(
      "a",
      "b",
      " ",
      "\t",
      "==",
      "!=",
      "!",
      "=",
      "&&",
      "||",
      "&",
      "|",
      "(",
      ")",
      "{",
      "}",
      ",",
      "'x'",
      '"y"',
      "'",
      '"',
      "in",
      "not",
      "contains",
      "starts",
      "with",
      "ends",
      "has(",
      "all(",
      "global(",
      "has(a)",
      "all()",
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 20 }), (parts) => {
        const r = tryParseSelector(parts.join(""));
        if (r.ok) expect(parseSelector(r.selector.canonical).canonical).toBe(r.selector.canonical);
      }),
      { numRuns: 3000 },
    );
  });

  it("canonical form round-trips: same canonical text, same id and same verdict on random labels", () => {
    fc.assert(
      fc.property(selectorArb, fc.array(labelsArb, { minLength: 1, maxLength: 8 }), (text, labelSets) => {
        const s = parseSelector(text);
        const again = parseSelector(s.canonical);
        expect(again.canonical).toBe(s.canonical);
        expect(again.id).toBe(s.id);
        for (const labels of labelSets) expect(again.matches(labels)).toBe(s.matches(labels));
      }),
      { numRuns: 1000 },
    );
  });

  it("label restrictions are sound: a matching label set satisfies every restriction", () => {
    fc.assert(
      fc.property(selectorArb, labelsArb, (text, labels) => {
        const s = parseSelector(text);
        if (!s.matches(labels)) return;
        for (const [name, r] of s.labelRestrictions()) {
          const present = Object.hasOwn(labels, name);
          if (r.mustBePresent) expect(present).toBe(true);
          if (r.mustBeAbsent) expect(present).toBe(false);
          if (r.mustHaveOneOfValues !== undefined) expect(r.mustHaveOneOfValues).toContain(labels[name]);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("`!` inverts and De Morgan holds", () => {
    fc.assert(
      fc.property(selectorArb, selectorArb, labelsArb, (a, b, labels) => {
        const not = parseSelector(`!(${a})`).matches(labels);
        expect(not).toBe(!parseSelector(a).matches(labels));
        const lhs = parseSelector(`!((${a}) && (${b}))`).matches(labels);
        const rhs = parseSelector(`!(${a}) || !(${b})`).matches(labels);
        expect(lhs).toBe(rhs);
      }),
      { numRuns: 500 },
    );
  });
});
