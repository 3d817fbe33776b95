import { isValidInterfaceName } from "@margay/api";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";

/** Linux IFNAMSIZ is 16 including the NUL terminator. */
export const MAX_IFNAME_BYTES = 15;

const NETNS_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const NETNS_PATH_RE = /^\/[A-Za-z0-9_./-]+$/;

/**
 * True if `name` is a valid interface name (1..15 bytes, `[A-Za-z0-9_.-]`, not `.`/`..`): the rule of
 * `isValidInterfaceName` in `@margay/api`, which workload interface names are derived under.
 */
export function isValidIfName(name: string): boolean {
  return isValidInterfaceName(name);
}

/** Throws `invalid-name` unless {@link isValidIfName}. Returns the name for chaining. */
export function validateIfName(name: string): string {
  if (!isValidIfName(name)) {
    throw new DataplaneError(DataplaneErrorCode.InvalidName, "invalid interface name", {
      details: { ifname: name },
    });
  }
  return name;
}

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
