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
 * `Object.keys`, spreads and equality checks do not see it. A mark rather than a `WeakSet` of the
 * nodes: an IPAM fill stores millions of short-lived nodes (every version of a block), and a weak
 * table of them made each scavenge slower by more than the marks cost (#20).
 */
const SHARED: unique symbol = Symbol("margay.datastore.shared");

/** The mark's descriptor (non-enumerable, read-only), one object for every node marked. */
const MARK: PropertyDescriptor = Object.freeze({ value: true });

/**
 * True when `v` (an object) was frozen by {@link freezeShared}. Asks `Object.isFrozen` first: it reads
 * the object's map, while the mark's lookup on an object of a rare shape (an IPAM handle's `block`
 * record has a key per block) misses V8's caches and costs ten times more (#20).
 */
function isSharedNode(v: object): boolean {
  return Object.isFrozen(v) && (v as { [SHARED]?: true })[SHARED] === true;
}

/** True when `v` was frozen by {@link freezeShared} (and so is immutable plain data). */
export function isShared(v: unknown): boolean {
  return typeof v === "object" && v !== null && isSharedNode(v);
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
  if (isSharedNode(v)) return v;
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
 * Freezes a plain JSON value all the way down and records it as shared, so that a datastore write whose object
 * holds it (or parts of it) shares it instead of copying it; returns the value to use. The memory
 * backend stores objects this way and hands them out frozen (watch events, transaction results), so a
 * caller that builds the next version of an object from them (as IPAM builds a block's next state)
 * writes only what it changed. "Plain JSON data" is what `JSON.parse` makes: plain objects and arrays,
 * strings, finite numbers, booleans, null, data properties only. A value that is not (an `undefined`
 * property, a `Date`, a hole, NaN, -0) is not frozen: a frozen JSON copy of it is returned instead, so
 * what is stored is always what a JSON round trip would give. Parts shared already are kept as they are.
 */
export function freezeShared<T>(value: T): T {
  if (typeof value !== "object" || value === null || isSharedNode(value)) return value;
  // One walk checks the value and lists the nodes it would freeze; they are frozen only once the whole
  // value is known to be plain, so a value that is not is left as the caller made it.
  const nodes: object[] = [];
  if (!collectPlain(value, 0, nodes)) return freezeOwn(jsonCopy(value));
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i] as object;
    // A node met twice (a value may hold one object in two places) is marked already.
    if (!Object.isFrozen(n)) {
      Object.defineProperty(n, SHARED, MARK);
      Object.freeze(n);
    }
  }
  return value;
}

/**
 * `[...base, item]` as {@link freezeShared} would leave it, for a `base` that is shared already (a list
 * of a stored object, say an IPAM block's attribute entries): `base`'s elements are frozen plain data,
 * so they are copied without being read again, and only `item` is checked and frozen. The walk of a
 * list that grows by one entry per write read every entry each time, and most of them were cold in
 * memory (#20). Otherwise the same as `freezeShared([...base, item])`.
 */
export function appendShared<T>(base: readonly T[], item: T): T[] {
  const n = base.length;
  const out = new Array<T>(n + 1);
  for (let i = 0; i < n; i++) out[i] = base[i] as T;
  if (!Array.isArray(base) || !isSharedNode(base) || typeof item !== "object" || item === null) {
    out[n] = item;
    return freezeShared(out);
  }
  out[n] = freezeShared(item);
  Object.defineProperty(out, SHARED, MARK);
  return Object.freeze(out) as T[];
}

/**
 * True when `v` (an object not yet shared) is plain JSON data as {@link freezeShared} defines it;
 * pushes it and its nodes that are not shared yet onto `nodes` (parts already shared are not walked).
 */
function collectPlain(v: object, depth: number, nodes: object[]): boolean {
  if (depth >= MAX_DEPTH) return false;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return false;
    // Most elements met here are numbers, null or shared objects (a block's lists): checked inline, so
    // a block's few hundred elements cost a load and a compare each, not a call (#20). A hole reads as
    // undefined (Array.prototype has no elements), which is not plain, as `i in v` would say.
    const n = v.length;
    for (let i = 0; i < n; i++) {
      const x: unknown = v[i];
      if (typeof x === "number") {
        // Finite and not -0 (`x === 0` holds for -0 too; 1 / -0 is -Infinity).
        if (x - x !== 0 || (x === 0 && 1 / x < 0)) return false;
      } else if (typeof x === "object") {
        // The mark read here too (this site sees a list's elements: a block's attribute entries).
        if (x !== null && (x as { [SHARED]?: true })[SHARED] !== true && !collectPlain(x, depth + 1, nodes))
          return false;
      } else if (typeof x !== "string" && typeof x !== "boolean") return false;
    }
  } else {
    if (Object.getPrototypeOf(v) !== Object.prototype) return false;
    const o = v as Record<string, unknown>;
    if (typeof o.toJSON === "function") return false;
    const keys = Object.keys(o);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as string;
      const x = o[k];
      // Numbers inline (a block's sequence numbers), anything else through the general check.
      if (typeof x === "number") {
        if (x - x !== 0 || (x === 0 && 1 / x < 0)) return false;
      } else if (k === "__proto__" || !isPlainValue(x, depth, nodes)) return false;
    }
  }
  nodes.push(v);
  return true;
}

function isPlainValue(x: unknown, depth: number, nodes: object[]): boolean {
  switch (typeof x) {
    case "string":
    case "boolean":
      return true;
    case "number":
      return Number.isFinite(x) && !Object.is(x, -0);
    case "object":
      // The mark read here, not through `isSharedNode`: this site sees only the few shapes of the
      // values given to `freezeShared` (IPAM block specs), so its own inline cache stays fast, and
      // most objects met here are shared (frozen), for which `Object.isFrozen` is the slow path.
      return x === null || (x as { [SHARED]?: true })[SHARED] === true || collectPlain(x, depth + 1, nodes);
    default:
      return false;
  }
}

/**
 * {@link freezeShared} for a value known to be plain JSON data (made by {@link jsonCopy} or
 * `JSON.parse`): no check.
 */
export function freezeOwn<T>(value: T): T {
  if (typeof value === "object" && value !== null && !isSharedNode(value)) freezeNode(value);
  return value;
}

function freezeNode(v: object): void {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === "object" && x !== null && !isSharedNode(x)) freezeNode(x);
    }
  } else {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      const x = o[k];
      if (typeof x === "object" && x !== null && !isSharedNode(x)) freezeNode(x);
    }
  }
  Object.defineProperty(v, SHARED, MARK);
  Object.freeze(v);
}
