import { validateNetnsName, validateNetnsPath } from "./names.js";

/**
 * An explicit network-namespace handle. Node cannot safely `setns` (libuv threads share the process), so
 * every kernel command is run through a helper that enters the namespace: `ip -n NAME`, `ip netns exec NAME`
 * or `nsenter --net=PATH`. There is no ambient default: the host namespace must be asked for by name.
 */
export type NetnsHandle =
  /** The namespace the process runs in (the host, for a node agent). */
  | { readonly kind: "current" }
  /** A named namespace under `/run/netns`. */
  | { readonly kind: "named"; readonly name: string }
  /** A namespace file (e.g. `/proc/<pid>/ns/net` or a CNI runtime's netns path). */
  | { readonly kind: "path"; readonly path: string };

/** The current (host) namespace handle. */
export const CURRENT_NETNS: NetnsHandle = Object.freeze({ kind: "current" });

/** A validated handle for the named namespace `name`. */
export function namedNetns(name: string): NetnsHandle {
  return Object.freeze({ kind: "named", name: validateNetnsName(name) });
}

/** A validated handle for the namespace file at `path`. */
export function pathNetns(path: string): NetnsHandle {
  return Object.freeze({ kind: "path", path: validateNetnsPath(path) });
}

/** The `ip` argv prefix that targets `ns` (`["-n", name]`, or nothing for the current one). */
export function ipNetnsArgs(ns: NetnsHandle): string[] {
  return ns.kind === "named" ? ["-n", ns.name] : [];
}

/**
 * Argv that runs `argv` inside `ns`: unchanged for the current namespace, `nsenter --net=PATH ...` for a
 * named one (`/run/netns/NAME`) or a path.
 */
export function inNetns(ns: NetnsHandle, argv: readonly string[]): string[] {
  switch (ns.kind) {
    case "current":
      return [...argv];
    case "named":
      // nsenter rather than `ip netns exec`: the latter also unshares a mount namespace and remounts /sys,
      // which costs milliseconds per command and is not needed for ip, nft or /proc/sys/net.
      return ["nsenter", `--net=/run/netns/${ns.name}`, "--", ...argv];
    case "path":
      return ["nsenter", `--net=${ns.path}`, "--", ...argv];
  }
}

/** Argv of `ip` (with `extra` arguments) targeting `ns`; path handles go through `nsenter`. */
export function ipArgv(ns: NetnsHandle, extra: readonly string[]): string[] {
  if (ns.kind === "path") return inNetns(ns, ["ip", ...extra]);
  return ["ip", ...ipNetnsArgs(ns), ...extra];
}

/** A short human label of `ns` for logs and error details. */
export function netnsLabel(ns: NetnsHandle): string {
  return ns.kind === "current" ? "current" : ns.kind === "named" ? ns.name : ns.path;
}
