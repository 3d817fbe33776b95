/**
 * Process helpers of the cluster lab: commands with argument arrays (never a shell), namespaces entered
 * through `nsenter`/`ip netns exec`, polling with a message that says what was awaited.
 *
 * @packageDocumentation
 */
import { type ChildProcess, execFile } from "node:child_process";
import { ClusterLabError } from "./errors.js";

/** Runs `argv` and resolves with its stdout; rejects with a `command-failed` error carrying stderr. */
export function runCommand(
  argv: readonly string[],
  options: { readonly timeoutMs?: number; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new ClusterLabError("bad-input", "empty command"));
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: options.timeoutMs ?? 30_000,
        maxBuffer: 64 * 1024 * 1024,
        ...(options.env === undefined ? {} : { env: options.env }),
      },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new ClusterLabError(
              "command-failed",
              `${argv.join(" ")}: ${String(stderr).trim() || err.message}`,
              {
                details: { argv: [...argv], stdout: String(stdout), stderr: String(stderr) },
                cause: err,
              },
            ),
          );
        } else resolve(String(stdout));
      },
    );
  });
}

/** Argv that runs `argv` in the named namespace `ns` (network namespace only; `/sys` stays the caller's). */
export function nsArgv(ns: string, argv: readonly string[]): string[] {
  return ["nsenter", `--net=/run/netns/${ns}`, "--", ...argv];
}

/** Resolves when `child` has exited (at once if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Sends `signal`, then SIGKILL if the process has not exited within `graceMs`; resolves once it exited. */
export async function terminate(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 5_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = exited(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await done;
  clearTimeout(timer);
}

/** Options of {@link waitFor}. */
export interface WaitForOptions {
  /** Give up after this long, ms. Default 30 000. */
  readonly timeoutMs?: number | undefined;
  /** Time between attempts, ms. Default 200. */
  readonly intervalMs?: number | undefined;
  /** Aborts the wait. */
  readonly signal?: AbortSignal | undefined;
}

/**
 * Polls `check` until it returns something other than `undefined`/`false`, and returns that. A check that
 * throws counts as not yet; the last error (or the last value a `describe` gives) ends up in the timeout
 * message, so a failed wait says what was awaited and what was seen instead.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitForOptions & { readonly describe?: () => string | Promise<string> } = {},
): Promise<T> {
  const timeout = options.timeoutMs ?? 30_000;
  const interval = options.intervalMs ?? 200;
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      let seen =
        last === undefined ? "" : `: last error: ${last instanceof Error ? last.message : String(last)}`;
      if (options.describe !== undefined) {
        try {
          seen += `; state: ${await options.describe()}`;
        } catch {}
      }
      throw new ClusterLabError("timeout", `timed out after ${timeout} ms waiting for ${what}${seen}`, {
        retryable: true,
        details: { what, timeoutMs: timeout },
        ...(last === undefined ? {} : { cause: last }),
      });
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}
