/**
 * Deep copies with JSON's meaning, without the text in between. Every write copies the caller's
 * object (the caller may change it afterwards) and a backend must store exactly what a JSON round
 * trip would keep; `JSON.parse(JSON.stringify(v))` does both but costs a serialisation and a parse,
 * several times the cost of walking the object, and was most of the CPU of an IPAM allocation on the
 * memory backend (#20). The plain-data walk below gives the same result for plain objects, arrays and
 * primitives and hands anything else (class instances, `toJSON`, `__proto__` keys, very deep or
 * cyclic values) to the JSON round trip itself, so the result is always what JSON would give.
 */

/**
 * Marks the nodes of a value frozen by {@link freezeShared}: plain JSON data (made by this module),
 * frozen all the way down, so a copy may share it instead of copying it. Non-enumerable, so JSON,
 * `Object.keys`, spreads and equality checks do not see it.
 */
const SHARED: unique symbol = Symbol("margay.datastore.shared");

/** True when `v` was frozen by {@link freezeShared} (and so is immutable plain data). */
export function isShared(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as { [SHARED]?: true })[SHARED] === true;
}

/** Thrown inside {@link jsonCopy}'s walk when a value needs the JSON round trip. */
class NeedsJson {}
const NEEDS_JSON = new NeedsJson();

/** Deeper than this the round trip decides (it also reports cycles as JSON does). */
const MAX_DEPTH = 256;

function copyArray(a: readonly unknown[], depth: number): unknown[] {
  if (Object.getPrototypeOf(a) !== Array.prototype) throw NEEDS_JSON;
  const n = a.length;
  const out = new Array<unknown>(n);
  for (let i = 0; i < n; i++) {
    const x = a[i];
    switch (typeof x) {
      case "string":
      case "boolean":
        out[i] = x;
        break;
      case "number":
        // JSON writes NaN and ±Infinity as null and -0 as 0 (`x === 0` holds for -0 too).
        out[i] = Number.isFinite(x) ? (x === 0 ? 0 : x) : null;
        break;
      case "object":
        out[i] = x === null ? null : copyValue(x, depth);
        break;
      case "bigint":
        throw NEEDS_JSON;
      default:
        // undefined (a hole too), functions and symbols become null in an array.
        out[i] = null;
    }
  }
  return out;
}

function copyObject(o: Record<string, unknown>, depth: number): Record<string, unknown> {
  const proto = Object.getPrototypeOf(o);
  if ((proto !== Object.prototype && proto !== null) || typeof o.toJSON === "function") throw NEEDS_JSON;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(o)) {
    const x = o[k];
    switch (typeof x) {
      case "string":
      case "boolean":
        break;
      case "number":
        if (!Number.isFinite(x)) {
          if (k === "__proto__") throw NEEDS_JSON;
          out[k] = null;
          continue;
        }
        break;
      case "object":
        if (x !== null) {
          if (k === "__proto__") throw NEEDS_JSON;
          out[k] = copyValue(x, depth);
          continue;
        }
        break;
      case "bigint":
        throw NEEDS_JSON;
      default:
        // undefined, functions and symbols: JSON leaves the property out.
        continue;
    }
    // Assigning `__proto__` would set the copy's prototype; JSON.parse makes it an own property.
    if (k === "__proto__") throw NEEDS_JSON;
    out[k] = x === 0 ? 0 : x;
  }
  return out;
}

function copyValue(v: object, depth: number): unknown {
  if (isShared(v)) return v;
  if (depth >= MAX_DEPTH) throw NEEDS_JSON;
  return Array.isArray(v) ? copyArray(v, depth + 1) : copyObject(v as Record<string, unknown>, depth + 1);
}

/**
 * `JSON.parse(JSON.stringify(value))` for an object, computed by walking plain data directly (see the
 * module comment). Throws what `JSON.stringify` throws (a `TypeError` for a cycle or a BigInt) and
 * returns `undefined` where it would (a function, say). The value itself is always a new object, but
 * a part of it frozen by {@link freezeShared} is shared, not copied: it is immutable plain data, which
 * is what a copy would be.
 */
export function jsonCopy<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    try {
      return (
        Array.isArray(value) ? copyArray(value, 1) : copyObject(value as Record<string, unknown>, 1)
      ) as T;
    } catch (e) {
      if (e !== NEEDS_JSON) throw e;
    }
  }
  const text = JSON.stringify(value) as string | undefined;
  return (text === undefined ? undefined : JSON.parse(text)) as T;
}

/**
 * A mutable deep copy of a value that is already plain JSON data (made by {@link jsonCopy} or
 * `JSON.parse`, possibly frozen): no checks, no fallback.
 */
export function plainCopy<T>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const n = value.length;
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) {
      const x: unknown = value[i];
      out[i] = typeof x === "object" && x !== null ? plainCopy(x) : x;
    }
    return out as T;
  }
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    const x = (value as Record<string, unknown>)[k];
    const c = typeof x === "object" && x !== null ? plainCopy(x) : x;
    // JSON.parse makes `__proto__` an own property; an assignment would set the prototype instead.
    if (k === "__proto__")
      Object.defineProperty(out, k, { value: c, enumerable: true, writable: true, configurable: true });
    else out[k] = c;
  }
  return out as T;
}

/**
 * Freezes a value made by {@link jsonCopy} (or `JSON.parse`) and everything in it, and marks every
 * part so that a later {@link jsonCopy} shares it; returns it. Parts already marked are left as they
 * are (they are frozen all the way down).
 */
export function freezeShared<T>(v: T): T {
  if (typeof v === "object" && v !== null && !isShared(v)) freezeNode(v);
  return v;
}

function freezeNode(v: object): void {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === "object" && x !== null && !isShared(x)) freezeNode(x);
    }
  } else {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const x = o[k];
      if (typeof x === "object" && x !== null && !isShared(x)) freezeNode(x);
    }
  }
  Object.defineProperty(v, SHARED, { value: true });
  Object.freeze(v);
}
