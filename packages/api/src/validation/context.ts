import type { ValidationIssue } from "./errors.js";

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** Appends a property to a path: `a.b`, or `a["x.y/z"]` for keys that are not identifiers. */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === "number") return `${base}[${key}]`;
  if (IDENT.test(key)) return base === "" ? key : `${base}.${key}`;
  return `${base}[${JSON.stringify(key)}]`;
}

/** Appends several keys/indices to a path: `at("spec", "ingress", 2, "source")`. */
export function at(base: string, ...keys: (string | number)[]): string {
  return keys.reduce<string>((p, k) => joinPath(p, k), base);
}

/** Collects issues during one validation run. */
export class Ctx {
  readonly issues: ValidationIssue[] = [];

  /** Records an issue and returns `undefined`, so validators can `return ctx.fail(...)`. */
  fail(path: string, message: string): undefined {
    this.issues.push({ path, message });
    return undefined;
  }

  /** Number of issues so far (to tell whether a sub-validation added any). */
  get count(): number {
    return this.issues.length;
  }
}

/** A plain JSON-like object. */
export type Obj = Readonly<Record<string, unknown>>;

/** Short, bounded rendering of a value for messages. */
export function show(v: unknown): string {
  let s: string;
  try {
    s =
      typeof v === "string"
        ? JSON.stringify(v)
        : typeof v === "bigint"
          ? `${v}n`
          : (JSON.stringify(v) ?? String(v));
  } catch {
    s = Object.prototype.toString.call(v);
  }
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** JSON-ish type name of a value, for "expected X, got Y" messages. */
export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

/** True for a plain object (not an array, not null, not a class instance such as Date or Map). */
export function isPlainObject(v: unknown): v is Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Defines an own enumerable property, safe for any key (including `__proto__`). */
export function setOwn(o: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Checks `v` is a plain object whose keys are all in `allowed`; reports each unknown key. Returns the
 * object (even with unknown keys, so the known ones are still checked) or undefined if not an object.
 */
export function object(v: unknown, path: string, ctx: Ctx, allowed: readonly string[]): Obj | undefined {
  if (!isPlainObject(v)) return ctx.fail(path, `expected an object, got ${typeName(v)}`);
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) ctx.fail(joinPath(path, key), "unknown field");
  }
  return v;
}

/** Reads an own property (never the prototype chain); `null` counts as absent, as in Kubernetes. */
export function field(o: Obj, key: string): unknown {
  return Object.hasOwn(o, key) && o[key] !== null ? o[key] : undefined;
}
