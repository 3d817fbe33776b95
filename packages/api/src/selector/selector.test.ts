import { describe, expect, it } from "vitest";
import {
  isSelectorParseError,
  parseSelector,
  type SelectorParseError,
  selectorMatches,
  tokenizeSelector,
  tryParseSelector,
} from "./index.js";

type L = Record<string, string>;
/** [selector, labels that match, labels that do not]. Cases include those of Calico's parser tests. */
const table: [string, L[], L[]][] = [
  ['a == "b"', [{ a: "b" }, { a: "b", c: "d" }], [{}, { a: "c" }, { c: "d" }]],
  [
    'a == "b" && c == "d"',
    [{ a: "b", c: "d" }],
    [{}, { a: "b", c: "e" }, { a: "c", c: "d" }, { c: "d" }, { a: "b" }],
  ],
  [
    'a == "b" || c == "d"',
    [{ a: "b", c: "d" }, { a: "b" }, { c: "d" }],
    [{}, { a: "e", c: "e" }, { c: "e" }],
  ],
  [`a in {"'", '"', "c"}`, [{ a: "c" }, { a: '"' }, { a: "'" }], [{}, { a: "e" }]],
  [`a not in {"'", '"', "c"}`, [{}, { a: "e" }], [{ a: "c" }, { a: '"' }, { a: "'" }]],
  ["a == 'a'", [{ a: "a" }], [{ a: "b" }, {}]],
  ['a != "b"', [{ a: "a" }, {}], [{ a: "b" }]],
  ['a != "a"', [{}], [{ a: "a" }]],
  ['a contains "a"', [{ a: "a" }, { a: "bab" }, { a: "aaa", b: "c" }], [{}, { a: "b" }, { b: "aaa" }]],
  ['a starts with "a"', [{ a: "a" }, { a: "abb" }], [{}, { a: "b" }, { a: "baa" }, { b: "aaa" }]],
  ['a ends with "a"', [{ a: "a" }, { a: "bba" }], [{}, { a: "b" }, { a: "aab" }, { b: "aaa" }]],
  ["a startswith 'x'", [{ a: "xy" }], [{ a: "yx" }]],
  ["a endswith 'x'", [{ a: "yx" }], [{ a: "xy" }]],
  ['a contains ""', [{ a: "" }, { a: "q" }], [{}]],
  ['!a in {"a"}', [{ a: "b" }, {}], [{ a: "a" }]],
  ['a in {"a", "b"}', [{ a: "a" }, { a: "b" }], [{ a: "c" }, {}]],
  ["a in {}", [], [{}, { a: "" }]],
  ["a not in {}", [{}, { a: "x" }], []],
  ["a in {'x',}", [{ a: "x" }], [{ a: "" }]],
  ["has(a)", [{ a: "b" }, { a: "" }], [{ b: "b" }, {}]],
  ["!has(a)", [{ b: "b" }, {}], [{ a: "b" }]],
  ["has( a )", [{ a: "" }], [{}]],
  ["", [{}, { a: "b" }], []],
  [" \t ", [{}], []],
  ["all()", [{}, { a: "b" }], []],
  ["all( )", [{}], []],
  ["global()", [{}, { a: "b" }], []],
  ["!all()", [], [{}]],
  ["!!has(b)", [{ b: "" }], [{ a: "b" }]],
  ["! has(a)", [], [{ a: "b" }]],
  ["!!! has(a)", [{}], [{ a: "b" }]],
  ["!! ! has(a)", [{}], [{ a: "b" }]],
  ["a == 'a1' && b != 'b1'", [{ a: "a1" }, { a: "a1", b: "b2" }], [{ a: "a1", b: "b1" }]],
  ["a != 'a1' && !b == 'b1'", [{}], [{ a: "a1", b: "b1" }, { b: "b1" }]],
  ["has(a) && !has(b)", [{ a: "a" }], [{ a: "a", b: "" }, {}]],
  ["!(!has(a) || has(b))", [{ a: "a" }], [{ a: "a", b: "b" }, {}]],
  ["a == 'a1' || b != 'b1'", [{ a: "a1", b: "b1" }, {}], [{ b: "b1" }]],
  ["a != 'a1' || b != 'b1'", [{ a: "a1" }], [{ a: "a1", b: "b1" }]],
  ["! a == 'a1' || ! b == 'b1'", [{ a: "a1" }], [{ a: "a1", b: "b1" }]],
  // The rest of Calico's parser_test.go vectors (same selectors, same verdicts).
  ["a not in {'d', 'e'}", [{ a: "a" }, {}], [{ a: "d" }]],
  ["a not in {'a'}", [{}], [{ a: "a" }]],
  ["!!!has(a)", [{}], [{ a: "b" }]],
  ["! !!has(a)", [{}], [{ a: "b" }]],
  ["a == 'a1' && b == 'b1'", [{ a: "a1", b: "b1" }], [{ a: "a1" }, { b: "b1" }]],
  ["a != 'a1' && b == 'b1'", [{ b: "b1" }], [{ a: "a1", b: "b1" }]],
  ["a != 'a1' && b != 'b1'", [{}], [{ a: "a1", b: "b1" }, { a: "a1" }, { b: "b1" }]],
  ["!a == 'a1' && b == 'b1'", [{ b: "b1" }, { a: "a2", b: "b1" }], [{ a: "a1", b: "b1" }]],
  ["!has(b) && has(a)", [{ a: "a" }], [{ a: "a", b: "b" }]],
  ["!(has(b) || !has(a))", [{ a: "a" }], [{}, { a: "a", b: "" }]],
  ["a == 'a1' || b == 'b1'", [{ a: "a1", b: "b1" }, { a: "a1" }, { b: "b1" }], [{}, { a: "b1" }]],
  ["a != 'a1' || b == 'b1'", [{ a: "a1", b: "b1" }, {}], [{ a: "a1" }]],
  // Precedence: `!` > `&&` > `||`.
  ["a == '1' || b == '1' && c == '1'", [{ a: "1" }, { b: "1", c: "1" }], [{ b: "1" }, { c: "1" }]],
  [
    "(a == '1' || b == '1') && c == '1'",
    [
      { a: "1", c: "1" },
      { b: "1", c: "1" },
    ],
    [{ a: "1" }, { b: "1" }],
  ],
  ["!has(a) && has(b) || has(c)", [{ b: "" }, { c: "" }, { a: "", c: "" }], [{ a: "", b: "" }, {}]],
  ["!(has(a) && has(b))", [{}, { a: "" }], [{ a: "", b: "" }]],
  // Label keys with prefixes, dots, dashes, slashes; labels named like keywords.
  [
    "projectcalico.org/namespace == 'kube-system' && app.kubernetes.io/name in {'dns'}",
    [{ "projectcalico.org/namespace": "kube-system", "app.kubernetes.io/name": "dns" }],
    [{ "projectcalico.org/namespace": "kube-system" }],
  ],
  ["in == 'x'", [{ in: "x" }], [{}]],
  ["contains contains 'x'", [{ contains: "axb" }], [{ contains: "b" }]],
  ["has == 'x' || all == 'y'", [{ has: "x" }, { all: "y" }], [{}]],
  ["a==\"b\"&&c!='d'", [{ a: "b" }], [{ a: "b", c: "d" }]],
  ["((a == 'b'))", [{ a: "b" }], [{}]],
  // Values are compared exactly (case, whitespace, unicode).
  ["a == 'Ünï cødé ✓'", [{ a: "Ünï cødé ✓" }], [{ a: "ünï cødé ✓" }]],
  ["a == ' x '", [{ a: " x " }], [{ a: "x" }]],
  // Prototype keys are not labels unless set.
  ["has(constructor) || has(__proto__) || toString == 'x'", [{ toString: "x" }], [{}]],
];

describe("selector evaluation (Calico semantics)", () => {
  for (const [sel, yes, no] of table) {
    it(`${JSON.stringify(sel)}`, () => {
      const s = parseSelector(sel);
      const again = parseSelector(s.canonical);
      for (const labels of yes) {
        expect(s.matches(labels), JSON.stringify(labels)).toBe(true);
        expect(s.matches(new Map(Object.entries(labels))), `Map ${JSON.stringify(labels)}`).toBe(true);
        expect(again.matches(labels), `canonical ${JSON.stringify(labels)}`).toBe(true);
      }
      for (const labels of no) {
        expect(s.matches(labels), JSON.stringify(labels)).toBe(false);
        expect(s.matches(new Map(Object.entries(labels))), `Map ${JSON.stringify(labels)}`).toBe(false);
        expect(again.matches(labels), `canonical ${JSON.stringify(labels)}`).toBe(false);
      }
    });
  }

  it("selectorMatches parses and evaluates in one call", () => {
    expect(selectorMatches("a == 'x'", { a: "x" })).toBe(true);
    expect(selectorMatches("a == 'x'", { a: "y" })).toBe(false);
  });
});

/** [selector, expected canonical, expected Calico UniqueID ("" = not pinned)]. */
const canonical: [string, string, string][] = [
  ["", "all()", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"],
  [" all() ", "all()", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"],
  [" (all() )", "all()", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"],
  ["! (has( b)||! has(a ))", "!(has(b) || !has(a))", "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q"],
  ['! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")', "s:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w"],
  [`a == "'"`, `a == "'"`, ""],
  [`a == '"'`, `a == '"'`, ""],
  [`a contains '"'`, `a contains '"'`, ""],
  [`a contains "'"`, `a contains "'"`, ""],
  ['a in {"d"}', 'a in {"d"}', ""],
  [`a startswith '"'`, `a starts with '"'`, ""],
  [`a endswith "'"`, `a ends with "'"`, ""],
  [`a!='"'`, `a != '"'`, ""],
  ["a in {'d', 'a', 'b'}", 'a in {"a", "b", "d"}', ""],
  ['a in {"z", "z", "x", "y", "x", "a"}', 'a in {"a", "x", "y", "z"}', ""],
  ["a notin {'b', 'a'}", 'a not in {"a", "b"}', ""],
  ["a in {}", "a in {}", ""],
  ["!(k == 'v')", '!k == "v"', ""],
  ["!!!(k == 'v')", '!k == "v"', ""],
  ["!(!has(a))", "has(a)", ""],
  ["!(!(!has(a)))", "!has(a)", ""],
  ["a == 'x' && b == 'y' && c == 'z'", '(a == "x" && b == "y" && c == "z")', ""],
  ["(a == 'x' && b == 'y') && c == 'z'", '((a == "x" && b == "y") && c == "z")', ""],
  [
    "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
    '!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})',
    "",
  ],
  ["global() || has(x)", "(global() || has(x))", ""],
  // Go sorts by UTF-8 bytes: U+FF5E sorts before U+1F600 (UTF-16 code units would order them the other way).
  ["a in {'\u{1F600}', '\uFF5E'}", 'a in {"\uFF5E", "\u{1F600}"}', ""],
];

describe("canonical form and unique id", () => {
  for (const [input, want, uid] of canonical) {
    it(`${JSON.stringify(input)} → ${want}`, () => {
      const s = parseSelector(input);
      expect(s.canonical).toBe(want);
      expect(String(s)).toBe(want);
      const again = parseSelector(want);
      expect(again.canonical).toBe(want);
      expect(again.ast).toEqual(s.ast);
      expect(again.id).toBe(s.id);
      expect(s.id).toMatch(/^s:[A-Za-z0-9_-]{38}$/);
      if (uid !== "") expect(s.id).toBe(uid);
    });
  }

  it("different selectors get different ids", () => {
    expect(parseSelector("a == 'x'").id).not.toBe(parseSelector("a == 'y'").id);
  });
});

/** [bad selector, expected error position]. Includes Calico's list of bad selectors. */
const bad: [string, number][] = [
  ["b == b", 5],
  ["b contains b", 11],
  ["b starts with b", 14],
  ["b ends with b", 12],
  ["'b1' == b", 0],
  ["b", 1],
  ["a b", 2],
  ["!", 1],
  ['foo == "bar" &', 13],
  ['foo == "bar" |', 13],
  ["foo != ||", 7],
  ['foo in {"", ||', 12],
  ['foo in ""', 7],
  ['"FOO', 0],
  [`"FOO'`, 0],
  ["'FOO", 0],
  ["(", 1],
  ['(a == "foo"', 11],
  [")", 0],
  ["()", 1],
  ["%", 0],
  ['a == "b" && %', 12],
  ['a == "b" || %', 12],
  ["a ", 2],
  ["has(foo) &&", 11],
  ["a = 'b'", 2],
  ["has(a", 5],
  ["has()", 4],
  ["has (a)", 4],
  ["all(x)", 4],
  ["global(", 7],
  ["a starts 'x'", 2],
  ["a not 'x'", 2],
  ["a in {'x' 'y'}", 10],
  ["a in {,}", 6],
  ["a == 'x'\n&& b == 'y'", 8],
  ["a == 'x' has(b)", 9],
  ["a == 'x' b == 'y'", 9],
  ["a & b", 2],
  ["a | b", 2],
];

describe("parse errors", () => {
  for (const [sel, position] of bad) {
    it(`rejects ${JSON.stringify(sel)} at ${position}`, () => {
      let caught: unknown;
      try {
        parseSelector(sel);
      } catch (e) {
        caught = e;
      }
      expect(isSelectorParseError(caught)).toBe(true);
      const err = caught as SelectorParseError;
      expect(err.code).toBe("invalid-selector");
      expect(err.retryable).toBe(false);
      expect(err.details.selector).toBe(sel);
      expect(err.position).toBe(position);
      expect(err.message).toContain(`position ${position}`);
      const r = tryParseSelector(sel);
      expect(r.ok).toBe(false);
    });
  }

  it("rejects nesting beyond the limit with a typed error, not a stack overflow", () => {
    const deep = `${"(".repeat(5000)}has(a)${")".repeat(5000)}`;
    const r = tryParseSelector(deep);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.details.reason).toMatch(/nested deeper/);
    const ok = `${"(".repeat(150)}has(a)${")".repeat(150)}`;
    expect(parseSelector(ok).canonical).toBe("has(a)");
  });

  it("guard rejects look-alikes", () => {
    expect(isSelectorParseError(new Error("x"))).toBe(false);
    expect(isSelectorParseError({ code: "invalid-selector" })).toBe(false);
    expect(isSelectorParseError(null)).toBe(false);
  });
});

describe("tokenizer", () => {
  it("records kinds, values and start offsets", () => {
    const toks = tokenizeSelector("a not in {'x'} && has(b)");
    expect(toks.map((t) => [t.kind, t.value, t.start])).toEqual([
      ["label", "a", 0],
      ["not in", "", 2],
      ["{", "", 9],
      ["string", "x", 10],
      ["}", "", 13],
      ["&&", "", 15],
      ["has()", "b", 18],
      ["eof", "", 24],
    ]);
  });
});
