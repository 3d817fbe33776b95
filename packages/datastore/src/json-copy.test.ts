import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { appendShared, freezeShared, isShared, jsonCopy, plainCopy } from "./json-copy.js";

const roundTrip = (v: unknown): unknown => {
  const t = JSON.stringify(v) as string | undefined;
  return t === undefined ? undefined : JSON.parse(t);
};

/** Values JSON treats specially: dropped, turned into null, or given to toJSON. */
const odd = fc.constantFrom<unknown>(
  undefined,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -0,
  () => 1,
  Symbol("s"),
  new Date(0),
  { toJSON: () => "replaced" },
  new Map([[1, 2]]),
  Object.create(null) as object,
);

const value = fc.letrec((tie) => ({
  leaf: fc.oneof(fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.constant(null), odd),
  node: fc.oneof(
    { depthSize: "small" },
    tie("leaf"),
    fc.array(tie("node"), { maxLength: 5 }),
    fc.sparseArray(tie("leaf"), { maxLength: 5 }),
    fc.dictionary(
      fc.oneof(fc.string(), fc.constantFrom("0", "1", "10", "__proto__", "toJSON")),
      tie("node"),
      {
        maxKeys: 5,
      },
    ),
  ),
})).node;

describe("jsonCopy", () => {
  it("is JSON.parse(JSON.stringify(v)) for any value (property)", () => {
    fc.assert(
      fc.property(value, (v) => {
        const top = { metadata: { name: "x" }, v };
        expect(jsonCopy(top)).toStrictEqual(roundTrip(top));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps JSON's errors and its own-property __proto__", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => jsonCopy(cyclic)).toThrow(TypeError);
    expect(() => jsonCopy({ n: 1n })).toThrow(TypeError);
    const withProto = JSON.parse('{"__proto__":{"polluted":true},"a":1}') as object;
    const c = jsonCopy(withProto) as Record<string, unknown>;
    expect(Object.getPrototypeOf(c)).toBe(Object.prototype);
    expect(Object.keys(c)).toEqual(["__proto__", "a"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("shares what freezeShared froze, and copies everything else", () => {
    const shared = freezeShared({ list: [1, { deep: true }], rec: { "0": 5 } });
    expect(Object.isFrozen(shared.list[1])).toBe(true);
    expect(isShared(shared.list)).toBe(true);
    // The mark is invisible to JSON, keys and spreads.
    expect(Object.keys(shared)).toEqual(["list", "rec"]);
    expect(JSON.stringify(shared)).toBe('{"list":[1,{"deep":true}],"rec":{"0":5}}');
    expect(isShared({ ...shared })).toBe(false);
    const mine = { a: [1, 2] };
    const input = { mine, shared, frozenByCaller: Object.freeze({ x: Object.freeze([1]) }) };
    const c = jsonCopy(input);
    expect(c.shared).toBe(shared);
    expect(c.mine).not.toBe(mine);
    expect(c.mine.a).not.toBe(mine.a);
    // Frozen by someone else: copied (it may hold getters, or parts frozen only on top).
    expect(c.frozenByCaller).not.toBe(input.frozenByCaller);
    // The top is always new, even when shared.
    expect(jsonCopy(shared)).not.toBe(shared);
    expect(jsonCopy(shared)).toStrictEqual(roundTrip(shared));
  });

  it("freezeShared freezes plain data in place, and anything else as a frozen JSON copy", () => {
    const plain = { a: [1, { b: "x" }], n: null };
    expect(freezeShared(plain)).toBe(plain);
    expect(Object.isFrozen(plain.a[1])).toBe(true);
    for (const odd of [
      { u: undefined },
      { d: new Date(0) },
      { h: new Array(3) },
      { z: -0 },
      { n: Number.NaN },
    ]) {
      const out = freezeShared(odd);
      expect(out).not.toBe(odd);
      expect(Object.isFrozen(odd)).toBe(false);
      expect(out).toStrictEqual(roundTrip(odd));
      expect(isShared(out)).toBe(true);
    }
  });

  it("adds no property JSON, keys or spreads would see to the objects it freezes", () => {
    const list = [1, { deep: true }];
    const shared = freezeShared({ list, rec: { "0": 5 } });
    expect(isShared(shared) && isShared(list) && isShared(list[1])).toBe(true);
    expect(Object.getOwnPropertyNames(shared)).toEqual(["list", "rec"]);
    expect(Object.getOwnPropertyNames(list)).toEqual(["0", "1", "length"]);
    expect(Object.keys({ ...(list[1] as object) })).toEqual(["deep"]);
  });

  it("freezeShared leaves every part of a value that is not plain as it was", () => {
    const inner = { a: [1, { b: 2 }] };
    const sharedPart = freezeShared({ s: 1 });
    const odd = { inner, sharedPart, later: undefined };
    const out = freezeShared(odd);
    expect(out).not.toBe(odd);
    expect(Object.isFrozen(inner) || Object.isFrozen(inner.a) || Object.isFrozen(inner.a[1])).toBe(false);
    expect(isShared(inner)).toBe(false);
    expect(out).toStrictEqual({ inner: { a: [1, { b: 2 }] }, sharedPart: { s: 1 } });
    // The copy is frozen all the way down and keeps what was shared already.
    expect(isShared(out.inner.a[1]) && Object.isFrozen(out.inner.a[1])).toBe(true);
    expect(out.sharedPart).toBe(sharedPart);
    // A plain value holding a shared part keeps that part and freezes the rest in place.
    const next = { inner, sharedPart };
    expect(freezeShared(next)).toBe(next);
    expect(next.sharedPart).toBe(sharedPart);
    expect(isShared(inner.a[1]) && Object.isFrozen(inner.a[1])).toBe(true);
  });

  it("freezeShared takes a value holding parts its caller froze (#20)", () => {
    const theirs = Object.freeze({ inner: { a: 1 } });
    const v = { theirs, again: theirs };
    expect(freezeShared(v)).toBe(v);
    expect(Object.isFrozen(theirs.inner)).toBe(true);
    // Not ours to vouch for: a copy copies it (and shares what is ours inside it).
    expect(isShared(theirs)).toBe(false);
    const c = jsonCopy(v);
    expect(c.theirs).not.toBe(theirs);
    expect(c.theirs.inner).toBe(theirs.inner);
  });

  it("appendShared extends a shared list without walking it, and is freezeShared([...base, item]) (#20)", () => {
    const base: object[] = freezeShared([{ a: 1 }, { b: [2] }]);
    const item = { c: { d: 3 } };
    const out = appendShared(base, item);
    expect(out).toStrictEqual([{ a: 1 }, { b: [2] }, { c: { d: 3 } }]);
    expect(isShared(out) && Object.isFrozen(out)).toBe(true);
    expect(out[0]).toBe(base[0]);
    expect(out[2]).toBe(item);
    expect(isShared(item.c)).toBe(true);
    // A copy shares the whole list.
    expect(jsonCopy({ l: out }).l).toBe(out);
    // Not plain: a frozen JSON copy of the item, as freezeShared gives.
    const odd = appendShared(base, { u: undefined, n: Number.NaN });
    expect(odd[2]).toStrictEqual({ n: null });
    expect(isShared(odd)).toBe(true);
    // A primitive item or a base that is not shared: checked as a whole.
    expect(isShared(appendShared([1, 2], 3))).toBe(true);
    const nan = appendShared(freezeShared([1]), Number.NaN);
    expect(nan).toStrictEqual([1, null]);
    expect(isShared(nan)).toBe(true);
    const mutable = [{ a: 1 }];
    const out2 = appendShared(mutable, { a: 2 });
    expect(isShared(out2) && isShared(mutable[0])).toBe(true);
  });

  it("plainCopy makes a mutable copy of frozen data", () => {
    const shared = freezeShared(
      JSON.parse('{"a":[1,{"b":2}],"__proto__":{"c":3}}') as Record<string, unknown>,
    );
    const c = plainCopy(shared);
    expect(c).toStrictEqual(JSON.parse('{"a":[1,{"b":2}],"__proto__":{"c":3}}'));
    expect(Object.isFrozen(c) || Object.isFrozen(c.a)).toBe(false);
    expect(isShared(c)).toBe(false);
  });
});
