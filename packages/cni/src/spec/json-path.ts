/**
 * A small structural validator whose every error names the exact JSON path of the bad value
 * (`$.plugins[1].ipam.type`), because "invalid config" without a location is useless to an operator.
 *
 * @packageDocumentation
 */

import { CniError, CniErrorCode } from "./errors.js";
import { ipFamily } from "./ip-text.js";

/** A JSON path under construction: `$`, `$.a`, `$.a[0]`. */
export type JsonPath = string;

/** Appends a key to a JSON path (bracket-quoted when it is not an identifier). */
export function pathKey(path: JsonPath, key: string): JsonPath {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/** Appends an index to a JSON path. */
export function pathIndex(path: JsonPath, i: number): JsonPath {
  return `${path}[${i}]`;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

const NO_VALUE: unique symbol = Symbol("no-value");

/** Builds the code-7 error for a value at `path` (message starts with the path). */
export function invalidAt(
  path: JsonPath,
  expectation: string,
  value: unknown = NO_VALUE,
  code: number = CniErrorCode.InvalidNetworkConfig,
): CniError {
  const got = value === NO_VALUE ? "" : `, got ${describe(value)}`;
  return new CniError(code, `${path}: ${expectation}${got}`, { context: { path } });
}

/** Asserts a plain object. */
export function expectObject(v: unknown, path: JsonPath): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw invalidAt(path, "must be an object", v);
  return v as Record<string, unknown>;
}

/** Asserts a string (optionally non-empty). */
export function expectString(v: unknown, path: JsonPath, nonEmpty = false): string {
  if (typeof v !== "string") throw invalidAt(path, "must be a string", v);
  if (nonEmpty && v === "") throw invalidAt(path, "must not be empty");
  return v;
}

/** Asserts a boolean. */
export function expectBoolean(v: unknown, path: JsonPath): boolean {
  if (typeof v !== "boolean") throw invalidAt(path, "must be a boolean", v);
  return v;
}

/** Asserts an integer within `[min, max]`. */
export function expectInteger(
  v: unknown,
  path: JsonPath,
  min = Number.MIN_SAFE_INTEGER,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (typeof v !== "number" || !Number.isInteger(v)) throw invalidAt(path, "must be an integer", v);
  if (v < min || v > max) throw invalidAt(path, `must be between ${min} and ${max}`);
  return v;
}

/** Asserts an array and validates each element with `each(element, elementPath)`. */
export function expectArray<T>(v: unknown, path: JsonPath, each: (e: unknown, p: JsonPath) => T): T[] {
  if (!Array.isArray(v)) throw invalidAt(path, "must be an array", v);
  return v.map((e, i) => each(e, pathIndex(path, i)));
}

/** Asserts an array of strings. */
export function expectStringArray(v: unknown, path: JsonPath): string[] {
  return expectArray(v, path, (e, p) => expectString(e, p));
}

/** Asserts an IPv4 or IPv6 address without prefix. */
export function expectIp(v: unknown, path: JsonPath): string {
  const s = expectString(v, path);
  if (ipFamily(s) === 0) throw invalidAt(path, `must be an IP address (got ${JSON.stringify(s)})`);
  return s;
}

/** Parses `addr/len`; returns the address family (4 or 6) or 0 when malformed. */
export function cidrFamily(s: string): 0 | 4 | 6 {
  const slash = s.lastIndexOf("/");
  if (slash <= 0) return 0;
  const fam = ipFamily(s.slice(0, slash));
  const len = s.slice(slash + 1);
  if (fam === 0 || !/^(0|[1-9]\d{0,2})$/.test(len)) return 0;
  if (Number(len) > (fam === 4 ? 32 : 128)) return 0;
  return fam;
}

/** Asserts an address with prefix length (`10.0.0.5/24`, `fd00::5/64`). */
export function expectCidr(v: unknown, path: JsonPath): string {
  const s = expectString(v, path);
  if (cidrFamily(s) === 0)
    throw invalidAt(path, `must be an address with prefix length (got ${JSON.stringify(s)})`);
  return s;
}
