import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import type { CommandRunner } from "./runner.js";
import { type NetnsHandle, ipArgv, inNetns } from "./netns.js";

/** Options of a kernel call. */
export interface KernelCallOptions {
  /** Aborts the underlying command. */
  readonly signal?: AbortSignal | undefined;
}

/** Runs `ip -json <args>` in `ns` and parses the output (empty output → `[]`). */
export async function ipJson<T>(
  runner: CommandRunner,
  ns: NetnsHandle,
  args: readonly string[],
  options: KernelCallOptions = {},
): Promise<T[]> {
  const { stdout } = await runner.run(ipArgv(ns, ["-json", ...args]), { signal: options.signal });
  const text = stdout.trim();
  return text === "" ? [] : (JSON.parse(text) as T[]);
}

/** Runs `ip <args>` in `ns`. */
export async function ip(
  runner: CommandRunner,
  ns: NetnsHandle,
  args: readonly string[],
  options: KernelCallOptions = {},
): Promise<string> {
  return (await runner.run(ipArgv(ns, args), { signal: options.signal })).stdout;
}

/**
 * Feeds `lines` to `ip -force -batch -` in `ns`: one process for any number of changes. `-force` keeps
 * going past a failing line, so one bad route cannot block the rest; the error (if any) lists them all.
 */
export async function ipBatch(
  runner: CommandRunner,
  ns: NetnsHandle,
  lines: readonly string[],
  options: KernelCallOptions = {},
): Promise<void> {
  if (lines.length === 0) return;
  await runner.run(ipArgv(ns, ["-force", "-batch", "-"]), {
    stdin: `${lines.join("\n")}\n`,
    signal: options.signal,
  });
}

/** Feeds `lines` to `bridge -force -batch -` in `ns` (FDB entries). */
export async function bridgeBatch(
  runner: CommandRunner,
  ns: NetnsHandle,
  lines: readonly string[],
  options: KernelCallOptions = {},
): Promise<void> {
  if (lines.length === 0) return;
  const argv = ns.kind === "named" ? ["bridge", "-n", ns.name] : inNetns(ns, ["bridge"]);
  await runner.run([...argv, "-force", "-batch", "-"], {
    stdin: `${lines.join("\n")}\n`,
    signal: options.signal,
  });
}

/** Runs `bridge -json <args>` in `ns`. */
export async function bridgeJson<T>(
  runner: CommandRunner,
  ns: NetnsHandle,
  args: readonly string[],
  options: KernelCallOptions = {},
): Promise<T[]> {
  const argv = ns.kind === "named" ? ["bridge", "-n", ns.name] : inNetns(ns, ["bridge"]);
  const { stdout } = await runner.run([...argv, "-json", ...args], { signal: options.signal });
  const text = stdout.trim();
  return text === "" ? [] : (JSON.parse(text) as T[]);
}

/**
 * `ip -json [-d] link show dev NAME` in `ns`; `undefined` if there is no such device. Asking for one
 * device keeps this cheap on hosts with thousands of interfaces.
 */
export async function findLinkJson<T>(
  runner: CommandRunner,
  ns: NetnsHandle,
  name: string,
  options: KernelCallOptions & { readonly details?: boolean | undefined } = {},
): Promise<T | undefined> {
  const args = ["-json", ...(options.details === true ? ["-d"] : []), "link", "show", "dev", name];
  const r = await runner.run(ipArgv(ns, args), { signal: options.signal, okCodes: [0, 1] });
  if (r.code !== 0) {
    if (/does not exist|Cannot find device/i.test(r.stderr)) return undefined;
    throw new DataplaneError(DataplaneErrorCode.CommandFailed, `ip link show failed: ${r.stderr.trim()}`, {
      retryable: true,
      details: { ifname: name, stderr: r.stderr },
    });
  }
  const rows = JSON.parse(r.stdout.trim() || "[]") as T[];
  return rows[0];
}
