import { createHash } from "node:crypto";
import { DataplaneError, DataplaneErrorCode } from "../errors.js";

/** Linux IFNAMSIZ is 16 including the NUL terminator. */
export const MAX_IFNAME_BYTES = 15;

// Conservative: what iproute2 accepts and what nftables ifname matches can express without quoting.
const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const NETNS_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const NETNS_PATH_RE = /^\/[A-Za-z0-9_./-]+$/;

/** True if `name` is a valid interface name (1..15 bytes, `[A-Za-z0-9_.-]`, not `.`/`..`). */
export function isValidIfName(name: string): boolean {
  return (
    typeof name === "string" &&
    Buffer.byteLength(name) <= MAX_IFNAME_BYTES &&
    IFNAME_RE.test(name) &&
    name !== "." &&
    name !== ".."
  );
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

/**
 * Stable host-side veth name for a workload: `prefix` + the first hex digits of SHA-1(workloadId),
 * filling the 15-byte limit (Calico uses `cali` + 11 digits; the default prefix here is `mgy`, giving 12).
 */
export function workloadIfName(workloadId: string, prefix = "mgy"): string {
  if (!/^[a-z]{1,8}$/.test(prefix)) {
    throw new DataplaneError(
      DataplaneErrorCode.InvalidOptions,
      "interface prefix must be 1-8 lowercase letters",
      {
        details: { prefix },
      },
    );
  }
  const hex = createHash("sha1").update(workloadId).digest("hex");
  return prefix + hex.slice(0, MAX_IFNAME_BYTES - prefix.length);
}
