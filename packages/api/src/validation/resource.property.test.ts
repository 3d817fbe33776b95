import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkResource, isValidationError, validateResource, withDefaults } from "../index.js";
import { validExamples } from "./fixtures.js";

/** Validation must return or throw a ValidationError: never anything else, whatever the input. */
function assertTotal(input: unknown): void {
  let out: unknown;
  try {
    out = validateResource(input);
  } catch (e) {
    if (!isValidationError(e)) throw e;
    expect(e.issues.length).toBeGreaterThan(0);
    for (const issue of e.issues) expect(typeof issue.path).toBe("string");
    expect(checkResource(input).ok).toBe(false);
    return;
  }
  // Whatever passes is a fixed point of validation, and its defaulted form is valid too.
  expect(validateResource(out)).toEqual(out);
  const d = withDefaults(out as Parameters<typeof withDefaults>[0]);
  expect(validateResource(d)).toEqual(d);
}

type Path = (string | number)[];

function paths(v: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [prefix];
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      out.push(...paths(x, [...prefix, i]));
    });
  } else if (typeof v === "object" && v !== null) {
    for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  }
  return out;
}

/** Interesting replacement values: type confusion, boundaries, near-miss strings. */
const nasty = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    null,
    "",
    " ",
    0,
    -1,
    65535,
    65536,
    4294967296,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    "10.0.0.0/33",
    "10.0.0.1/24",
    "::/0",
    "fe80::1/10",
    "256.0.0.1",
    "1:2",
    "2:1",
    "has(",
    "global()",
    "a == 'b'",
    "__proto__",
    "constructor",
    "TCP",
    "tcp",
    "ICMPv6",
    "Always",
    [],
    {},
    [null],
    { __proto__: { polluted: true } },
  ),
);

function mutate(base: unknown, path: Path, mode: number, value: unknown): unknown {
  const root = structuredClone(base);
  if (path.length === 0) return value;
  let parent: Record<string | number, unknown> = root as Record<string | number, unknown>;
  for (const k of path.slice(0, -1)) parent = parent[k] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (mode === 0) delete parent[last];
  else if (mode === 1) parent[last] = value;
  else if (mode === 2 && typeof parent[last] === "object" && parent[last] !== null) {
    Object.defineProperty(parent[last], "__proto__", { value, enumerable: true });
  } else parent[last] = value;
  return root;
}

describe("validation properties", () => {
  it("random JSON values never throw anything but ValidationError", () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), assertTotal), { numRuns: 2000 });
  });

  it("random objects with a real kind and apiVersion never throw anything but ValidationError", () => {
    const kinds = [...new Set(Object.values(validExamples).map((e) => e.kind as string))];
    fc.assert(
      fc.property(
        fc.constantFrom(...kinds),
        fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
        fc.jsonValue({ maxDepth: 3 }),
        (kind, spec, metadata) => assertTotal({ apiVersion: "margay.io/v1", kind, metadata, spec }),
      ),
      { numRuns: 2000 },
    );
  });

  it("random mutations of valid resources never throw anything but ValidationError", () => {
    const bases = Object.values(validExamples);
    fc.assert(
      fc.property(
        fc
          .constantFrom(...bases)
          .chain((base) =>
            fc.tuple(
              fc.constant(base),
              fc.constantFrom(...paths(base)),
              fc.integer({ min: 0, max: 2 }),
              nasty,
            ),
          ),
        ([base, path, mode, value]) => assertTotal(mutate(base, path, mode, value)),
      ),
      { numRuns: 1500 },
    );
  });

  it("double mutations never throw anything but ValidationError", () => {
    const bases = Object.values(validExamples);
    fc.assert(
      fc.property(
        fc
          .constantFrom(...bases)
          .chain((base) =>
            fc.tuple(
              fc.constant(base),
              fc.constantFrom(...paths(base)),
              fc.constantFrom(...paths(base)),
              nasty,
              nasty,
            ),
          ),
        ([base, p1, p2, v1, v2]) => {
          let m = mutate(base, p1, 1, v1);
          try {
            m = mutate(m, p2, 1, v2);
          } catch {
            // The first mutation removed p2's parent; one mutation is still a fine test case.
          }
          assertTotal(m);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe("exotic input", () => {
  it("an object whose getter throws fails with a ValidationError carrying the cause", () => {
    const boom = new Error("boom");
    const hostile = {
      apiVersion: "margay.io/v1",
      kind: "IPPool",
      get metadata(): unknown {
        throw boom;
      },
    };
    assertTotal(hostile);
    const r = checkResource(hostile);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.issues).toEqual([{ path: "", message: "input could not be read: boom" }]);
      expect(r.error.cause).toBe(boom);
    }
    const spec = validExamples.IPPool as Record<string, unknown>;
    assertTotal({
      ...spec,
      spec: new Proxy(
        {},
        {
          ownKeys() {
            throw new TypeError("no keys");
          },
        },
      ),
    });
  });
});
