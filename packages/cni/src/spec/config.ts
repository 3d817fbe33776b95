/**
 * Decoding and validation of network configurations, configuration lists and results. Every error
 * names the JSON path of the offending value.
 *
 * @packageDocumentation
 */

import { CniError, CniErrorCode } from "./errors.js";
import {
  expectArray,
  expectBoolean,
  expectCidr,
  expectInteger,
  expectIp,
  expectObject,
  expectString,
  expectStringArray,
  invalidAt,
  type JsonPath,
  pathKey,
} from "./json-path.js";
import { validateNetworkName } from "./names.js";
import type {
  CniDns,
  CniInterface,
  CniIpConfig,
  CniRoute,
  IpamConfig,
  NetConf,
  NetConfList,
  PluginConf,
  ValidAttachment,
} from "./types.js";
import { VALID_ATTACHMENTS_KEY } from "./types.js";
import { isVersionString } from "./version.js";

/**
 * Parses JSON bytes or text. Throws a code-6 {@link CniError} (failed to decode content) on a syntax
 * error or an empty input.
 */
export function decodeJson(input: string | Uint8Array): unknown {
  const text = typeof input === "string" ? input : Buffer.from(input).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CniError(CniErrorCode.DecodingFailure, "error decoding network config", {
      details: (e as Error).message,
      cause: e,
    });
  }
}

function optional<T>(
  o: Record<string, unknown>,
  key: string,
  path: JsonPath,
  f: (v: unknown, p: JsonPath) => T,
): T | undefined {
  return o[key] === undefined ? undefined : f(o[key], pathKey(path, key));
}

/** Validates a `dns` object. */
export function validateDns(v: unknown, path: JsonPath): CniDns {
  const o = expectObject(v, path);
  const out: CniDns = {};
  const ns = optional(o, "nameservers", path, (e, p) => expectArray(e, p, expectIp));
  if (ns !== undefined) out.nameservers = ns;
  const domain = optional(o, "domain", path, (e, p) => expectString(e, p));
  if (domain !== undefined) out.domain = domain;
  const search = optional(o, "search", path, expectStringArray);
  if (search !== undefined) out.search = search;
  const options = optional(o, "options", path, expectStringArray);
  if (options !== undefined) out.options = options;
  return out;
}

function validateCapabilities(v: unknown, path: JsonPath): Record<string, boolean> {
  const o = expectObject(v, path);
  for (const [k, b] of Object.entries(o)) expectBoolean(b, pathKey(path, k));
  return o as Record<string, boolean>;
}

function validateIpam(v: unknown, path: JsonPath): IpamConfig {
  const o = expectObject(v, path);
  expectString(o.type, pathKey(path, "type"), true);
  return o as IpamConfig;
}

function validateCommonPluginKeys(o: Record<string, unknown>, path: JsonPath): void {
  expectString(o.type, pathKey(path, "type"), true);
  optional(o, "capabilities", path, validateCapabilities);
  optional(o, "runtimeConfig", path, expectObject);
  optional(o, "args", path, expectObject);
  optional(o, "ipam", path, validateIpam);
  optional(o, "dns", path, validateDns);
}

function validateVersionField(v: unknown, path: JsonPath): string {
  const s = expectString(v, path, true);
  if (!isVersionString(s))
    throw invalidAt(path, `must be a MAJOR.MINOR.PATCH version (got ${JSON.stringify(s)})`);
  return s;
}

function validateName(v: unknown, path: JsonPath): string {
  const s = expectString(v, path, true);
  try {
    validateNetworkName(s);
  } catch {
    throw invalidAt(path, `invalid network name ${JSON.stringify(s)}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
  }
  return s;
}

/**
 * Validates a single plugin configuration as a plugin receives it (`cniVersion`, `name`, `type`, the
 * optional well-known keys, `prevResult` shape is checked by {@link parseResult} separately).
 * Plugin-specific keys are kept as they are. Throws code 7 naming the JSON path.
 */
export function validateNetConf(v: unknown, path: JsonPath = "$"): NetConf {
  const o = expectObject(v, path);
  validateVersionField(o.cniVersion, pathKey(path, "cniVersion"));
  validateName(o.name, pathKey(path, "name"));
  validateCommonPluginKeys(o, path);
  optional(o, "prevResult", path, expectObject);
  return o as NetConf;
}

/** Validates a configuration list (spec 1.0.0 / 1.1.0). Throws code 7 naming the JSON path. */
export function validateNetConfList(v: unknown, path: JsonPath = "$"): NetConfList {
  const o = expectObject(v, path);
  validateVersionField(o.cniVersion, pathKey(path, "cniVersion"));
  optional(o, "cniVersions", path, (e, p) => expectArray(e, p, validateVersionField));
  validateName(o.name, pathKey(path, "name"));
  optional(o, "disableCheck", path, expectBoolean);
  optional(o, "disableGC", path, expectBoolean);
  const plugins = expectArray(o.plugins, pathKey(path, "plugins"), (e, p) => {
    const po = expectObject(e, p);
    validateCommonPluginKeys(po, p);
    return po as PluginConf;
  });
  if (plugins.length === 0) throw invalidAt(pathKey(path, "plugins"), "must list at least one plugin");
  return o as unknown as NetConfList;
}

/** Decodes and validates a configuration list from bytes or text (code 6 on bad JSON, 7 on bad shape). */
export function parseNetConfList(input: string | Uint8Array): NetConfList {
  return validateNetConfList(decodeJson(input));
}

/** Decodes and validates a single plugin configuration (code 6 on bad JSON, 7 on bad shape). */
export function parseNetConf(input: string | Uint8Array): NetConf {
  return validateNetConf(decodeJson(input));
}

/**
 * Wraps a single plugin configuration into a one-plugin list, as libcni does for `.conf` files.
 */
export function netConfToList(conf: NetConf): NetConfList {
  const { cniVersion, name, ...plugin } = conf;
  return { cniVersion, name, plugins: [plugin as PluginConf] };
}

/** Validates one interface of a result. */
export function validateInterface(v: unknown, path: JsonPath): CniInterface {
  const o = expectObject(v, path);
  const out: CniInterface = { name: expectString(o.name, pathKey(path, "name"), true) };
  const mac = optional(o, "mac", path, (e, p) => expectString(e, p));
  if (mac !== undefined) out.mac = mac;
  const mtu = optional(o, "mtu", path, (e, p) => expectInteger(e, p, 0, 0xffff_ffff));
  if (mtu !== undefined) out.mtu = mtu;
  const sandbox = optional(o, "sandbox", path, (e, p) => expectString(e, p));
  if (sandbox !== undefined) out.sandbox = sandbox;
  const socketPath = optional(o, "socketPath", path, (e, p) => expectString(e, p));
  if (socketPath !== undefined) out.socketPath = socketPath;
  const pciID = optional(o, "pciID", path, (e, p) => expectString(e, p));
  if (pciID !== undefined) out.pciID = pciID;
  return out;
}

/** Validates one address of a result (the legacy `version` key, when present, must match). */
export function validateIpConfig(v: unknown, path: JsonPath, interfaceCount: number): CniIpConfig {
  const o = expectObject(v, path);
  const out: CniIpConfig = { address: expectCidr(o.address, pathKey(path, "address")) };
  const gw = optional(o, "gateway", path, expectIp);
  if (gw !== undefined) out.gateway = gw;
  const idx = optional(o, "interface", path, (e, p) => expectInteger(e, p, 0));
  if (idx !== undefined) {
    if (idx >= interfaceCount) {
      throw invalidAt(pathKey(path, "interface"), `must index into interfaces (0..${interfaceCount - 1})`);
    }
    out.interface = idx;
  }
  if (o.version !== undefined) {
    const want = out.address.includes(":") ? "6" : "4";
    if (o.version !== want) throw invalidAt(pathKey(path, "version"), `must be "${want}" for ${out.address}`);
  }
  return out;
}

/** Validates one route of a result or IPAM configuration. */
export function validateRoute(v: unknown, path: JsonPath): CniRoute {
  const o = expectObject(v, path);
  const out: CniRoute = { dst: expectCidr(o.dst, pathKey(path, "dst")) };
  const gw = optional(o, "gw", path, expectIp);
  if (gw !== undefined) out.gw = gw;
  for (const k of ["mtu", "advmss", "priority", "table", "scope"] as const) {
    const n = optional(o, k, path, (e, p) => expectInteger(e, p, 0, 0xffff_ffff));
    if (n !== undefined) out[k] = n;
  }
  return out;
}

/** The still-valid attachments of a GC request (`cni.dev/valid-attachments`, default empty). */
export function validAttachmentsOf(conf: Record<string, unknown>, path: JsonPath = "$"): ValidAttachment[] {
  const v = conf[VALID_ATTACHMENTS_KEY];
  if (v === undefined) return [];
  return expectArray(v, pathKey(path, VALID_ATTACHMENTS_KEY), (e, p) => {
    const o = expectObject(e, p);
    return {
      containerID: expectString(o.containerID, pathKey(p, "containerID"), true),
      ifname: expectString(o.ifname, pathKey(p, "ifname"), true),
    };
  });
}
