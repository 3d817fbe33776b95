/**
 * Host commands (`nft`, `ip`, `journalctl`, `tar`, the agent binary) run with argument arrays, never a
 * shell; a lab network namespace is entered with `ip netns exec NAME` (Node cannot setns itself).
 *
 * @packageDocumentation
 */

import { execFile } from "node:child_process";

/** What a host command printed and how it ended. */
export interface HostResult {
  /** Exit code (null when killed by a signal or not started). */
  code: number | null;
  /** Standard output. */
  stdout: string;
  /** Standard error, or the spawn error's message when the program could not start. */
  stderr: string;
}

/** Options of {@link runHost}. */
export interface RunHostOptions {
  /** Network namespace name (`ip netns`) to run in. */
  netns?: string | undefined;
  /** Environment (default: the process's). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Kill after this many milliseconds (default 30 000). */
  timeoutMs?: number | undefined;
}

/** Runs `argv` (program first), inside `netns` when given; never throws. */
export function runHost(argv: readonly string[], options: RunHostOptions = {}): Promise<HostResult> {
  const full = options.netns === undefined ? [...argv] : ["ip", "netns", "exec", options.netns, ...argv];
  const [file, ...args] = full as [string, ...string[]];
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        env: options.env ?? process.env,
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 256 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        const code =
          err === null
            ? 0
            : typeof (err as { code?: unknown }).code === "number"
              ? (err as { code: number }).code
              : null;
        resolve({ code, stdout, stderr: stderr || (err !== null && code === null ? err.message : "") });
      },
    );
  });
}

/** A network namespace name as `ip netns` accepts it (no path separators, not `.`/`..`). */
export function isNetnsName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,64}$/.test(name) && name !== "." && name !== "..";
}
