import { describe, expect, it } from "vitest";
import { type LabelRestriction, parseSelector } from "./index.js";

const P = { mustBePresent: true, mustBeAbsent: false } as const;
const A = { mustBePresent: false, mustBeAbsent: true } as const;
const vals = (...v: string[]): LabelRestriction => ({ ...P, mustHaveOneOfValues: v });

/** Cases of Calico's label_restriction_test.go plus a few more. */
const cases: [string, Record<string, LabelRestriction>][] = [
  ["", {}],
  ["all()", {}],
  ["global()", {}],
  ["a == 'value'", { a: vals("value") }],
  ["has(a)", { a: P }],
  ["a in {'v1','v2'}", { a: vals("v1", "v2") }],
  ["a not in {'v1','v2'}", {}],
  ["a contains 'foo'", { a: P }],
  ["a ends with 'foo'", { a: P }],
  ["a starts with 'foo'", { a: P }],
  ["a != 'value'", {}],
  ["a == 'v1' && a == 'v1'", { a: vals("v1") }],
  ["a == 'v1' && a == 'v2'", { a: vals() }],
  ["a == 'v1' && has(a)", { a: vals("v1") }],
  ["a in {'v1','v2'} && a in {'v2','v3'} ", { a: vals("v2") }],
  ["a in {'v1','v2', 'v3'} && a in {'v2','v3'} ", { a: vals("v2", "v3") }],
  ["has(a) && a == 'v1'", { a: vals("v1") }],
  ["has(a) && !has(a)", { a: { mustBePresent: true, mustBeAbsent: true } }],
  ["a == 'v1' && b == 'v2'", { a: vals("v1"), b: vals("v2") }],
  ["a == 'v1' && all()", { a: vals("v1") }],
  ["all() && a == 'v1'", { a: vals("v1") }],
  ["a == 'v1' || a == 'v2'", { a: vals("v1", "v2") }],
  ["a == 'v2' || a == 'v1' || a in {'v3', 'v1'}", { a: vals("v1", "v2", "v3") }],
  ["has(a) || a == 'v2'", { a: P }],
  ["a=='v2' || has(a)", { a: P }],
  ["a=='v2' || has(b)", {}],
  ["a=='v2' || (has(b) && has(a))", { a: P }],
  ["a == 'v1' || b == 'v2'", {}],
  ["a == 'v1' || all()", {}],
  ["all() || b == 'v2'", {}],
  ["!(a == 'value')", {}],
  ["!has(a)", { a: A }],
  ["!!has(a)", { a: P }],
  ["!has(a) || !has(a)", { a: A }],
  ["!has(a) || has(b)", {}],
  ["a in {}", { a: vals() }],
];

describe("labelRestrictions", () => {
  for (const [sel, want] of cases) {
    it(JSON.stringify(sel), () => {
      const got = Object.fromEntries(parseSelector(sel).labelRestrictions());
      expect(got).toEqual(want);
      if (sel !== "") {
        // Prefixing "all() &&" never changes the restrictions.
        expect(Object.fromEntries(parseSelector(`all() && (${sel})`).labelRestrictions())).toEqual(want);
      }
    });
  }

  it("is cached and stable across calls", () => {
    const s = parseSelector("a == 'x'");
    expect(s.labelRestrictions()).toBe(s.labelRestrictions());
  });
});
