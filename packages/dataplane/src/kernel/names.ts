import { isValidInterfaceName, MAX_INTERFACE_NAME_BYTES } from "@margay/api";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";

/**
 * Linux IFNAMSIZ is 16 including the NUL terminator.
 *
 * @deprecated Use `MAX_INTERFACE_NAME_BYTES` from `@margay/api` (the same value; one name for it across
 * packages). Removed in the next minor release.
 */
export const MAX_IFNAME_BYTES: number = MAX_INTERFACE_NAME_BYTES;

const NETNS_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const NETNS_PATH_RE = /^\/[A-Za-z0-9_./-]+$/;

/**
 * True if `name` is a valid interface name (1..15 bytes, `[A-Za-z0-9_.-]`, not `.`/`..`).
 *
 * @deprecated Use `isValidInterfaceName` from `@margay/api` (this is it: one spelling of the rule,
 * which workload interface names are derived under). Removed in the next minor release.
 */
export function isValidIfName(name: string): boolean {
  return isValidInterfaceName(name);
}

/**
 * Throws `invalid-name` unless `name` passes `isValidInterfaceName` (`@margay/api`). Returns the name
 * for chaining. `@margay/cni`'s function of the same name checks the same thing for `CNI_IFNAME` and
 * throws a CNI error instead.
 */
export function validateInterfaceName(name: string): string {
  if (!isValidInterfaceName(name)) {
    throw new DataplaneError(DataplaneErrorCode.InvalidName, "invalid interface name", {
      details: { ifname: name },
    });
  }
  return name;
}

/** @deprecated Use {@link validateInterfaceName} (the same function). Removed in the next minor release. */
export const validateIfName: (name: string) => string = validateInterfaceName;

/** Throws `invalid-name` unless `name` is a safe named-netns name (as in `/run/netns/<name>`). */
export function validateNetnsName(name: string): string {
  if (typeof name !== "string" || !NETNS_NAME_RE.test(name) || name.includes("..")) {
    throw new DataplaneError(DataplaneErrorCode.InvalidName, "invalid netns name", {
      details: { netns: name },
    });
  }
  return name;
}

/** Throws `invalid-name` unless `path` is an absolute path without `..` components or odd characters. */
export function validateNetnsPath(path: string): string {
  if (typeof path !== "string" || !NETNS_PATH_RE.test(path) || path.split("/").includes("..")) {
    throw new DataplaneError(DataplaneErrorCode.InvalidName, "invalid netns path", { details: { path } });
  }
  return path;
}
