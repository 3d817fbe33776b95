import { type Ctx, field, joinPath, type Obj, show, typeName } from "./context.js";

/** A string; `undefined` (with an issue) otherwise. */
export function string(v: unknown, path: string, ctx: Ctx): string | undefined {
  return typeof v === "string" ? v : ctx.fail(path, `expected a string, got ${typeName(v)}`);
}

/** A non-empty string. */
export function nonEmptyString(v: unknown, path: string, ctx: Ctx): string | undefined {
  const s = string(v, path, ctx);
  if (s === undefined) return undefined;
  return s === "" ? ctx.fail(path, "must not be empty") : s;
}

/** A boolean. */
export function boolean(v: unknown, path: string, ctx: Ctx): boolean | undefined {
  return typeof v === "boolean" ? v : ctx.fail(path, `expected a boolean, got ${typeName(v)}`);
}

/** A finite number. */
export function number(v: unknown, path: string, ctx: Ctx): number | undefined {
  return typeof v === "number" && Number.isFinite(v)
    ? v
    : ctx.fail(path, `expected a number, got ${show(v)}`);
}

/** An integer in `[min, max]`. */
export function integer(v: unknown, path: string, ctx: Ctx, min: number, max: number): number | undefined {
  if (typeof v !== "number" || !Number.isInteger(v))
    return ctx.fail(path, `expected an integer, got ${show(v)}`);
  if (v < min || v > max) return ctx.fail(path, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

/** One of a fixed set of strings. */
export function oneOf<T extends string>(
  v: unknown,
  path: string,
  ctx: Ctx,
  allowed: readonly T[],
): T | undefined {
  if (typeof v === "string" && (allowed as readonly string[]).includes(v)) return v as T;
  return ctx.fail(path, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}, got ${show(v)}`);
}

/** An array whose items each pass `item`; items that fail are dropped (their issues are recorded). */
export function array<T>(
  v: unknown,
  path: string,
  ctx: Ctx,
  item: (x: unknown, path: string, ctx: Ctx) => T | undefined,
  opts: { maxItems?: number; minItems?: number } = {},
): T[] | undefined {
  if (!Array.isArray(v)) return ctx.fail(path, `expected an array, got ${typeName(v)}`);
  if (opts.maxItems !== undefined && v.length > opts.maxItems) {
    return ctx.fail(path, `must have at most ${opts.maxItems} items, got ${v.length}`);
  }
  if (opts.minItems !== undefined && v.length < opts.minItems) {
    return ctx.fail(path, `must have at least ${opts.minItems} item(s)`);
  }
  const out: T[] = [];
  v.forEach((x, i) => {
    const r = item(x, joinPath(path, i), ctx);
    if (r !== undefined) out.push(r);
  });
  return out;
}

/** Reports duplicate entries of a list (by a key function) at the later index. */
export function noDuplicates<T>(
  items: readonly T[],
  path: string,
  ctx: Ctx,
  key: (x: T) => string = String,
): void {
  const seen = new Set<string>();
  items.forEach((x, i) => {
    const k = key(x);
    if (seen.has(k)) ctx.fail(joinPath(path, i), `duplicate value ${show(k)}`);
    seen.add(k);
  });
}

/** A field validator: checks `v` at `path`, records issues in `ctx`, returns the canonical value. */
export type Check<T> = (v: unknown, path: string, ctx: Ctx) => T | undefined;

/**
 * If `key` is present (and not null) in `o`, validates it with `check` and, when valid, stores the
 * result in `out[key]`. Absent fields stay absent (defaults are applied separately).
 */
export function opt<T extends object, K extends keyof T & string>(
  o: Obj,
  out: T,
  key: K,
  path: string,
  ctx: Ctx,
  check: Check<NonNullable<T[K]>>,
): void {
  const raw = field(o, key);
  if (raw === undefined) return;
  const v = check(raw, joinPath(path, key), ctx);
  if (v !== undefined) out[key] = v;
}

/** Like {@link opt} but the field is required. Returns the value (or undefined if missing/invalid). */
export function req<T extends object, K extends keyof T & string>(
  o: Obj,
  out: Partial<T>,
  key: K,
  path: string,
  ctx: Ctx,
  check: Check<NonNullable<T[K]>>,
): T[K] | undefined {
  const raw = field(o, key);
  if (raw === undefined) return ctx.fail(joinPath(path, key), "required field is missing");
  const v = check(raw, joinPath(path, key), ctx);
  if (v !== undefined) out[key] = v;
  return v;
}
