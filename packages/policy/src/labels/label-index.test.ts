import { parseSelector, type Selector } from "@margay/api";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { labelsArb, selectorArb } from "../__tests__/arbitraries.js";
import { LabelIndex } from "./label-index.js";

type Op =
  | { op: "item"; key: number; labels: Record<string, string>; parents: number[] }
  | { op: "delete-item"; key: number }
  | { op: "parent"; id: number; labels: Record<string, string> }
  | { op: "delete-parent"; id: number }
  | { op: "selector"; text: string }
  | { op: "delete-selector"; index: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("item" as const),
      key: fc.nat(7),
      labels: labelsArb,
      parents: fc.uniqueArray(fc.nat(2), { maxLength: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete-item" as const), key: fc.nat(7) }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("parent" as const), id: fc.nat(2), labels: labelsArb }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete-parent" as const), id: fc.nat(2) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("selector" as const), text: selectorArb }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("delete-selector" as const), index: fc.nat(20) }) },
);

describe("LabelIndex", () => {
  // Without a scope label, and scoped by a label items and selectors use freely (items move between
  // scopes, lack the label, inherit it from a parent; selectors pin one or several scopes, or none).
  it.each([
    ["no scope label", undefined],
    ["scope label app", "app"],
  ])("matches brute-force evaluation after any sequence of changes (fast-check, %s)", (_, scopeLabel) => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const heard = new Set<string>();
        const index = new LabelIndex(
          (sel, item, m) => {
            const k = `${sel}|${item}`;
            // Every event must change something: no duplicate starts, no stops of unknown matches.
            expect(heard.has(k)).toBe(!m);
            if (m) heard.add(k);
            else heard.delete(k);
          },
          { scopeLabel },
        );
        const items = new Map<string, { labels: Record<string, string>; parents: string[] }>();
        const parents = new Map<string, Record<string, string>>();
        const selectors = new Map<string, Selector>();
        for (const op of ops) {
          switch (op.op) {
            case "item": {
              const ps = op.parents.map((p) => `p${p}`);
              items.set(`i${op.key}`, { labels: op.labels, parents: ps });
              index.setItem(`i${op.key}`, op.labels, ps);
              break;
            }
            case "delete-item":
              items.delete(`i${op.key}`);
              index.deleteItem(`i${op.key}`);
              break;
            case "parent":
              parents.set(`p${op.id}`, op.labels);
              index.setParent(`p${op.id}`, op.labels);
              break;
            case "delete-parent":
              parents.delete(`p${op.id}`);
              index.deleteParent(`p${op.id}`);
              break;
            case "selector": {
              const sel = parseSelector(op.text);
              selectors.set(sel.id, sel);
              index.addSelector(sel.id, sel);
              break;
            }
            case "delete-selector": {
              const ids = [...selectors.keys()];
              if (ids.length === 0) break;
              const id = ids[op.index % ids.length]!;
              selectors.delete(id);
              index.removeSelector(id);
              for (const k of [...heard]) if (k.startsWith(`${id}|`)) heard.delete(k);
              break;
            }
          }
        }
        const expected = new Set<string>();
        for (const [key, item] of items) {
          const labels = new Map<string, string>();
          for (const p of item.parents)
            for (const [k, v] of Object.entries(parents.get(p) ?? {})) if (!labels.has(k)) labels.set(k, v);
          for (const [k, v] of Object.entries(item.labels)) labels.set(k, v);
          expect(new Map(index.labelsOf(key))).toEqual(labels);
          for (const [id, sel] of selectors) if (sel.matches(labels)) expected.add(`${id}|${key}`);
        }
        const indexed = new Set<string>();
        for (const id of selectors.keys())
          for (const key of index.itemsMatching(id)) indexed.add(`${id}|${key}`);
        expect([...indexed].sort()).toEqual([...expected].sort());
        expect([...heard].sort()).toEqual([...expected].sort());
        for (const key of items.keys()) {
          expect([...index.selectorsMatching(key)].sort()).toEqual(
            [...expected]
              .filter((k) => k.endsWith(`|${key}`))
              .map((k) => k.split("|")[0])
              .sort(),
          );
        }
      }),
      { numRuns: 300 },
    );
  });

  it("evaluates only candidate selectors for an item change", () => {
    const index = new LabelIndex(() => {});
    const evaluated: string[] = [];
    const spy = (text: string): Selector => {
      const sel = parseSelector(text);
      return {
        ...sel,
        id: sel.id,
        labelRestrictions: () => sel.labelRestrictions(),
        matches: (l) => {
          evaluated.push(text);
          return sel.matches(l);
        },
      };
    };
    for (let i = 0; i < 100; i++) index.addSelector(`app${i}`, spy(`app == "v${i}"`));
    index.addSelector("has-role", spy("has(role)"));
    evaluated.length = 0;
    index.setItem("e1", { app: "v7" }, []);
    expect(evaluated).toEqual(['app == "v7"']);
    expect([...index.selectorsMatching("e1")]).toEqual(["app7"]);
    evaluated.length = 0;
    index.setItem("e1", { app: "v8", role: "x" }, []);
    expect(evaluated.sort()).toEqual(['app == "v8"', "has(role)"]);
  });

  it("inherits parent labels, the item's own label winning", () => {
    const index = new LabelIndex(() => {});
    index.setParent("kns.a", { "pcns.team": "red", app: "from-parent" });
    index.setItem("e", { app: "own" }, ["kns.a"]);
    const sel = parseSelector('pcns.team == "red" && app == "own"');
    index.addSelector(sel.id, sel);
    expect([...index.itemsMatching(sel.id)]).toEqual(["e"]);
    index.setParent("kns.a", { "pcns.team": "blue" });
    expect([...index.itemsMatching(sel.id)]).toEqual([]);
  });
});

describe("LabelIndex.addSelector work", () => {
  it("skips candidates that lack another value the selector requires, without evaluating it", () => {
    const index = new LabelIndex(() => undefined);
    // The selector's two labels are equally common; no item carries both values.
    for (let i = 0; i < 100; i++) index.setItem(`a-${i}`, { app: "x", ns: "A" }, []);
    for (let i = 0; i < 100; i++) index.setItem(`b-${i}`, { app: "y", ns: "B" }, []);
    index.setItem("hit", { app: "x", ns: "B" }, []);
    const real = parseSelector("app == 'x' && ns == 'B'");
    let evaluated = 0;
    const counting: Selector = {
      source: real.source,
      ast: real.ast,
      canonical: real.canonical,
      id: real.id,
      labelRestrictions: () => real.labelRestrictions(),
      toString: () => real.toString(),
      matches: (labels) => {
        evaluated++;
        return real.matches(labels);
      },
    };
    index.addSelector("s", counting);
    expect([...index.itemsMatching("s")]).toEqual(["hit"]);
    expect(evaluated).toBe(1);
  });
});

describe("LabelIndex parents", () => {
  it("an item re-set with other parents inherits from the new ones only, and counts its evaluations", () => {
    const index = new LabelIndex(() => undefined);
    index.setParent("a", { team: "x" });
    index.setParent("b", { team: "y" });
    index.addSelector("x", parseSelector("team == 'x'"));
    index.addSelector("y", parseSelector("team == 'y'"));
    index.setItem("i", { app: "1" }, ["a"]);
    expect([...index.selectorsMatching("i")]).toEqual(["x"]);
    // Same parents, another own label: still a child of a.
    index.setItem("i", { app: "2" }, ["a"]);
    index.setParent("a", { team: "y" });
    expect([...index.selectorsMatching("i")]).toEqual(["y"]);
    // Moved to b: a's labels no longer reach it, b's do.
    index.setParent("a", { team: "x" });
    index.setItem("i", { app: "2" }, ["b"]);
    expect([...index.selectorsMatching("i")]).toEqual(["y"]);
    index.setParent("a", { team: "y" });
    index.setParent("b", { team: "x" });
    expect([...index.selectorsMatching("i")]).toEqual(["x"]);
    const evaluated = index.selectorsEvaluated;
    index.setParent("a", { team: "z" });
    expect(index.selectorsEvaluated).toBe(evaluated);
    expect(evaluated).toBeGreaterThan(0);
  });
});

describe("LabelIndex scope label", () => {
  it("a selector pinned to one scope reads only that scope's items with its value, not every scope's", () => {
    const index = new LabelIndex(() => undefined, { scopeLabel: "ns" });
    // Ten namespaces of 100 pods; app names repeat in every namespace (app-0 .. app-9, 10 pods each).
    for (let n = 0; n < 10; n++)
      for (let i = 0; i < 100; i++) index.setItem(`ns${n}/p${i}`, { ns: `ns${n}`, app: `app-${i % 10}` }, []);
    index.addSelector("s", parseSelector("ns == 'ns3' && app == 'app-7'"));
    expect([...index.itemsMatching("s")].sort()).toEqual(
      Array.from({ length: 10 }, (_, k) => `ns3/p${k * 10 + 7}`).sort(),
    );
    // The 10 pods of app-7 in ns3: not the 100 of ns3, nor the 100 app-7 pods of all namespaces.
    expect(index.candidatesScanned).toBe(10);
    // Incremental: a pod moving into the scope (or out of it) is matched (or dropped) as it changes.
    index.setItem("ns4/p7", { ns: "ns3", app: "app-7" }, []);
    expect(index.itemsMatching("s").has("ns4/p7")).toBe(true);
    index.setItem("ns3/p7", { ns: "ns4", app: "app-7" }, []);
    expect(index.itemsMatching("s").has("ns3/p7")).toBe(false);
    index.removeSelector("s");
    index.addSelector("s2", parseSelector("ns in {'ns3', 'ns5'} && app == 'app-1'"));
    expect(index.itemsMatching("s2").size).toBe(20);
  });
});
