/**
 * An exclusive lock between processes on one host, held by a `flock(1)` helper process. The memory
 * backend's snapshot file is single-writer, so every margay-ipam invocation holds this lock across
 * load → allocate → save.
 *
 * Why a helper and not an O_EXCL lock file: breaking a stale O_EXCL lock (owner crashed) races with a
 * new owner taking it — the breaker can delete a live lock. A kernel `flock` dies with its holder, so
 * nothing is ever stale. Node has no `flock(2)`; `flock FILE sh -c 'echo locked; exec cat'` holds it until
 * we close cat's stdin,
 * and if this process dies, the pipe closes and the lock goes with it.
 *
 * @packageDocumentation
 */

import { spawn } from "node:child_process";
import { CniError, CniErrorCode } from "@margay/cni";

/** Options of {@link acquireFileLock}. */
export interface FileLockOptions {
  /** Give up after this long with a code-11 (try again later) error. Default 10 000 ms. */
  timeoutMs?: number | undefined;
  /** The `flock` binary. Default `flock` on a standard `PATH`. */
  flockPath?: string | undefined;
}

/** A held lock. */
export interface FileLock {
  /** Releases the lock (idempotent); resolves once the helper has exited. */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Takes an exclusive `flock` on `path` (created if missing). */
export function acquireFileLock(path: string, options: FileLockOptions = {}): Promise<FileLock> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const child = spawn(
      options.flockPath ?? "flock",
      ["--exclusive", "--wait", String(timeoutMs / 1000), path, "sh", "-c", "echo locked; exec cat"],
      {
        stdio: ["pipe", "pipe", "pipe"],
        env: { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" },
      },
    );
    let stderr = "";
    let stdout = "";
    let acquired = false;
    const exited = new Promise<void>((r) => child.once("close", () => r()));
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s: string) => {
      stderr += s;
    });
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (s: string) => {
      stdout += s;
      // The command runs only once the lock is held; sh's echo is an unbuffered write (flock's own
      // --verbose output sits in a stdio buffer until exit, so it cannot signal this).
      if (!acquired && stdout.includes("locked")) {
        acquired = true;
        let released = false;
        const release = async () => {
          if (released) return;
          released = true;
          child.stdin.end();
          await exited;
        };
        resolve({ release, [Symbol.asyncDispose]: release });
      }
    });
    child.stdin.on("error", () => {});
    child.on("error", (e) => {
      reject(new CniError(CniErrorCode.IoFailure, "cannot run flock", { details: e.message, cause: e }));
    });
    child.on("close", (code) => {
      if (acquired) return;
      reject(
        code === 1 && /timeout|failed to get lock/i.test(stderr)
          ? new CniError(CniErrorCode.TryAgainLater, "IPAM state is locked by another invocation", {
              details: path,
            })
          : new CniError(CniErrorCode.IoFailure, "cannot lock IPAM state", {
              details: `${path}: ${stderr.trim()}`,
            }),
      );
    });
  });
}
