/**
 * Results: validation of a plugin's output in any supported version, and conversion between the 1.x
 * form and the 0.4.0 / 0.3.x forms older runtimes expect.
 *
 * @packageDocumentation
 */

import { validateDns, validateInterface, validateIpConfig, validateRoute } from "./config.js";
import { CniError, CniErrorCode } from "./errors.js";
import { expectArray, expectObject, expectString, invalidAt, type JsonPath, pathKey } from "./json-path.js";
import type { CniResult, LegacyCniResult, LegacyIpConfig } from "./types.js";
import { compareVersions, isVersionString, SUPPORTED_CNI_VERSIONS } from "./version.js";

/** True for result versions that carry an explicit IP `version` (0.3.0 – 0.4.0). */
export function isLegacyResultVersion(v: string): boolean {
  return compareVersions(v, "1.0.0") < 0;
}

/**
 * Validates a result object in any supported version (0.3.0 – 1.1.0) and returns it in the 1.x shape,
 * keeping its original `cniVersion`. Throws code 7 (or code 1 for an unsupported version) naming the
 * JSON path.
 */
export function parseResult(v: unknown, path: JsonPath = "$"): CniResult {
  const o = expectObject(v, path);
  const version = expectString(o.cniVersion, pathKey(path, "cniVersion"), true);
  if (!isVersionString(version) || !SUPPORTED_CNI_VERSIONS.includes(version)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `${pathKey(path, "cniVersion")}: unsupported result version`,
      {
        details: `result is ${JSON.stringify(version)}, supported [${SUPPORTED_CNI_VERSIONS.join(" ")}]`,
      },
    );
  }
  const out: CniResult = { cniVersion: version };
  let ifaceCount = 0;
  if (o.interfaces !== undefined) {
    out.interfaces = expectArray(o.interfaces, pathKey(path, "interfaces"), validateInterface);
    ifaceCount = out.interfaces.length;
  }
  if (o.ips !== undefined) {
    out.ips = expectArray(o.ips, pathKey(path, "ips"), (e, p) => {
      if (isLegacyResultVersion(version)) {
        const ver = (e as { version?: unknown } | null)?.version;
        if (ver !== "4" && ver !== "6") throw invalidAt(pathKey(p, "version"), 'must be "4" or "6"', ver);
      }
      return validateIpConfig(e, p, ifaceCount);
    });
  }
  if (o.routes !== undefined) out.routes = expectArray(o.routes, pathKey(path, "routes"), validateRoute);
  if (o.dns !== undefined) out.dns = validateDns(o.dns, pathKey(path, "dns"));
  return out;
}

/** A result in the form of any supported version. */
export type AnyCniResult = CniResult | LegacyCniResult;

/**
 * Converts a result to the form of `toVersion` (0.3.0 – 1.1.0): adds or drops the IP `version` key and
 * drops fields the older format lacks. The input is not modified. Throws code 1 for an unsupported
 * target.
 */
export function convertResult(result: CniResult, toVersion: string): AnyCniResult {
  if (!SUPPORTED_CNI_VERSIONS.includes(toVersion)) {
    throw new CniError(CniErrorCode.IncompatibleVersion, "cannot convert result to unsupported version", {
      details: `from ${result.cniVersion} to ${toVersion}`,
    });
  }
  if (!isLegacyResultVersion(toVersion)) {
    const out: CniResult = { cniVersion: toVersion };
    if (result.interfaces) out.interfaces = result.interfaces.map((i) => ({ ...i }));
    if (result.ips) out.ips = result.ips.map((ip) => ({ ...ip }));
    if (result.routes) out.routes = result.routes.map((r) => ({ ...r }));
    if (result.dns) out.dns = structuredClone(result.dns);
    return out;
  }
  const out: LegacyCniResult = { cniVersion: toVersion };
  if (result.interfaces) {
    out.interfaces = result.interfaces.map((i) => {
      const li: NonNullable<LegacyCniResult["interfaces"]>[number] = { name: i.name };
      if (i.mac !== undefined) li.mac = i.mac;
      if (i.sandbox !== undefined) li.sandbox = i.sandbox;
      return li;
    });
  }
  if (result.ips) {
    out.ips = result.ips.map((ip) => {
      const lip: LegacyIpConfig = { version: ip.address.includes(":") ? "6" : "4", address: ip.address };
      if (ip.gateway !== undefined) lip.gateway = ip.gateway;
      if (ip.interface !== undefined) lip.interface = ip.interface;
      return lip;
    });
  }
  if (result.routes) {
    out.routes = result.routes.map((r) => (r.gw === undefined ? { dst: r.dst } : { dst: r.dst, gw: r.gw }));
  }
  if (result.dns) out.dns = structuredClone(result.dns);
  return out;
}

/** An empty result in the given version (what a plugin with nothing to report prints after ADD). */
export function emptyResult(cniVersion: string): CniResult {
  return { cniVersion };
}
