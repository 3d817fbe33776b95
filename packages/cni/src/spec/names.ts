/**
 * The naming rules of the specification for network names, container ids, interface names and
 * namespace paths, with the error codes libcni's validators use.
 *
 * @packageDocumentation
 */

import { CniError, CniErrorCode } from "./errors.js";

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/** Longest interface name Linux accepts (IFNAMSIZ - 1), in bytes. */
export const MAX_INTERFACE_NAME_BYTES = 15;

/**
 * Network name: starts alphanumeric, then alphanumerics, `_`, `.` or `-`. Code 7 when empty or
 * malformed.
 */
export function validateNetworkName(name: string): void {
  if (name === "") throw new CniError(CniErrorCode.InvalidNetworkConfig, "missing network name");
  if (!NAME.test(name)) {
    throw new CniError(CniErrorCode.InvalidNetworkConfig, "invalid characters found in network name", {
      details: name,
    });
  }
}

/**
 * Container id (CNI_CONTAINERID): same alphabet as a network name. Code 3 when empty (the container is
 * unknown), code 4 when malformed (an invalid environment variable).
 */
export function validateContainerId(id: string): void {
  if (id === "") throw new CniError(CniErrorCode.UnknownContainer, "missing containerID");
  if (!NAME.test(id)) {
    throw new CniError(CniErrorCode.InvalidEnvironmentVariables, "invalid characters in containerID", {
      details: id,
    });
  }
}

/**
 * Interface name (CNI_IFNAME): not empty, at most 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
 * Code 4 otherwise.
 */
export function validateInterfaceName(ifname: string): void {
  const bad = (msg: string, details?: string) =>
    new CniError(CniErrorCode.InvalidEnvironmentVariables, msg, { details, context: { ifname } });
  if (ifname === "") throw bad("interface name is empty");
  if (Buffer.byteLength(ifname, "utf8") > MAX_INTERFACE_NAME_BYTES) {
    throw bad(
      "interface name is too long",
      `interface name should be at most ${MAX_INTERFACE_NAME_BYTES} bytes`,
    );
  }
  if (ifname === "." || ifname === "..") throw bad("interface name is . or ..");
  if (/[/:\s]/u.test(ifname)) {
    throw bad("interface name contains / or : or whitespace characters", JSON.stringify(ifname));
  }
}

/** Longest path Linux accepts (PATH_MAX - 1). */
const MAX_PATH_BYTES = 4095;

/**
 * Syntax of a namespace path (CNI_NETNS): absolute, no NUL, no `..` segment, within PATH_MAX. Whether
 * the path exists is the caller's question. Code 4 otherwise.
 */
export function validateNetnsPath(path: string): void {
  const bad = (msg: string) =>
    new CniError(CniErrorCode.InvalidEnvironmentVariables, msg, {
      details: `CNI_NETNS=${JSON.stringify(path)}`,
    });
  if (path === "") throw bad("CNI_NETNS is empty");
  if (!path.startsWith("/")) throw bad("CNI_NETNS must be an absolute path");
  if (path.includes("\0")) throw bad("CNI_NETNS contains a NUL byte");
  if (path.split("/").includes("..")) throw bad("CNI_NETNS must not contain '..' segments");
  if (Buffer.byteLength(path, "utf8") > MAX_PATH_BYTES) throw bad("CNI_NETNS is too long");
}
