import { readFile } from "node:fs/promises";
import { ipJson } from "../kernel/iproute.js";
import type { NetnsHandle } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";

/**
 * Interface names of `/proc/net/dev` text (two header lines, then `  name: counters...` per interface).
 * Lines without a `:` are skipped.
 */
export function parseProcNetDev(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim();
    if (name !== "") names.push(name);
  }
  return names;
}

/** Where {@link linkNames} reads the current namespace's interfaces (a seam for tests). */
export interface LinkNamesOptions {
  readonly signal?: AbortSignal | undefined;
  /** Reads `/proc/self/net/dev`; default the file system. */
  readonly readProcNetDev?: (() => Promise<string>) | undefined;
}

/**
 * Names of the interfaces in `ns`. For the process's own namespace it reads `/proc/self/net/dev`
 * (per network namespace of the reader, unlike `/sys/class/net`, which shows the namespace sysfs was
 * mounted in), so asking costs no process; another namespace is asked through `ip -json link show`.
 */
export async function linkNames(
  runner: CommandRunner,
  ns: NetnsHandle,
  options: LinkNamesOptions = {},
): Promise<string[]> {
  if (ns.kind === "current") {
    const read = options.readProcNetDev ?? (() => readFile("/proc/self/net/dev", "utf8"));
    return parseProcNetDev(await read());
  }
  const links = await ipJson<{ ifname: string }>(runner, ns, ["link", "show"], { signal: options.signal });
  return links.map((l) => l.ifname);
}
