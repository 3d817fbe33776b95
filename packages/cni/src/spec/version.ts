/**
 * CNI specification versions: which ones this toolkit speaks, how to compare them, and how a runtime
 * and a plugin agree on one.
 *
 * @packageDocumentation
 */

import { CniError, CniErrorCode } from "./errors.js";

/** The newest specification version this toolkit implements. */
export const CURRENT_CNI_VERSION = "1.1.0";

/**
 * Versions whose results this toolkit can read and write. 0.3.0 shares the 0.3.1 result format; 0.1.0
 * and 0.2.0 results (a different shape) are out of scope.
 */
export const SUPPORTED_CNI_VERSIONS: readonly string[] = Object.freeze([
  "0.3.0",
  "0.3.1",
  "0.4.0",
  "1.0.0",
  "1.1.0",
]);

/** Output of the VERSION command. */
export interface VersionInfo {
  /** The version of this output's format (the newest the plugin speaks, or the one asked for). */
  cniVersion: string;
  /** Every spec version the plugin supports. */
  supportedVersions: string[];
}

const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/;

/** Returns true if `v` is a plain `MAJOR.MINOR.PATCH` version string. */
export function isVersionString(v: unknown): v is string {
  return typeof v === "string" && SEMVER.test(v);
}

/**
 * Compares two `MAJOR.MINOR.PATCH` strings: negative if `a < b`, zero if equal, positive if `a > b`.
 * Throws a code-6 {@link CniError} on a malformed version.
 */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  for (let i = 0; i < 3; i++) {
    if (pa[i] !== pb[i]) return pa[i]! - pb[i]!;
  }
  return 0;
}

function parseVersion(v: string): [number, number, number] {
  const m = SEMVER.exec(v);
  if (m === null) {
    throw new CniError(CniErrorCode.DecodingFailure, "invalid version string", {
      details: JSON.stringify(v),
    });
  }
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** True if `v` is at least `min`. */
export function versionAtLeast(v: string, min: string): boolean {
  return compareVersions(v, min) >= 0;
}

/** The highest version of a list (undefined if empty). */
export function highestVersion(versions: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const v of versions) if (best === undefined || compareVersions(v, best) > 0) best = v;
  return best;
}

/**
 * The plugin-side version check: the configuration's `cniVersion` must be one the plugin supports.
 * Throws a code-1 {@link CniError} shaped like libcni's ("incompatible CNI versions", details naming
 * both sides) otherwise.
 */
export function checkVersionSupported(configVersion: string, supported: readonly string[]): void {
  if (supported.includes(configVersion)) return;
  throw new CniError(CniErrorCode.IncompatibleVersion, "incompatible CNI versions", {
    details: `config is ${JSON.stringify(configVersion)}, plugin supports [${supported.map((v) => JSON.stringify(v)).join(" ")}]`,
  });
}

/**
 * The runtime-side choice for a config list (spec 1.1 `cniVersions`): the highest listed version this
 * runtime supports, else `cniVersion`. Throws code 1 if neither is supported.
 */
export function negotiateListVersion(
  list: { cniVersion: string; cniVersions?: readonly string[] | undefined },
  supported: readonly string[] = SUPPORTED_CNI_VERSIONS,
): string {
  const candidates = (list.cniVersions ?? []).filter((v) => isVersionString(v) && supported.includes(v));
  const best = highestVersion(candidates);
  if (best !== undefined) return best;
  if (supported.includes(list.cniVersion)) return list.cniVersion;
  throw new CniError(CniErrorCode.IncompatibleVersion, "no supported CNI version in configuration", {
    details: `cniVersion ${JSON.stringify(list.cniVersion)}, cniVersions ${JSON.stringify(list.cniVersions ?? [])}; supported [${supported.join(" ")}]`,
  });
}
