/**
 * An exclusive lock between processes on one host: a lock file created with O_EXCL holding the owner's
 * pid. The memory backend's snapshot file is single-writer, so every margay-ipam invocation holds this
 * lock across load → allocate → save. A lock whose owner is dead (or older than `staleMs`) is broken.
 *
 * @packageDocumentation
 */

import { open, readFile, rm, stat } from "node:fs/promises";
import { CniError, CniErrorCode } from "@margay/cni";

/** Options of {@link acquireFileLock}. */
export interface FileLockOptions {
  /** Give up after this long with a code-11 (try again later) error. Default 10 000 ms. */
  timeoutMs?: number | undefined;
  /** A lock file older than this is broken even if its pid looks alive (pid reuse). Default 60 000 ms. */
  staleMs?: number | undefined;
}

/** A held lock. */
export interface FileLock {
  /** Releases the lock (idempotent). */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function breakIfStale(path: string, staleMs: number): Promise<void> {
  try {
    const [text, st] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    const pid = Number.parseInt(text, 10);
    const old = Date.now() - st.mtimeMs > staleMs;
    // An empty file is a lock being written right now: only age may break it.
    if (old || (Number.isInteger(pid) && pid > 0 && !alive(pid))) await rm(path, { force: true });
  } catch {
    // gone meanwhile: the next attempt will tell
  }
}

/** Takes the lock at `path`, polling with jittered backoff. */
export async function acquireFileLock(path: string, options: FileLockOptions = {}): Promise<FileLock> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const staleMs = options.staleMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    try {
      const fh = await open(path, "wx", 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      let held = true;
      const release = async () => {
        if (!held) return;
        held = false;
        await rm(path, { force: true });
      };
      return { release, [Symbol.asyncDispose]: release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new CniError(CniErrorCode.IoFailure, "cannot create lock file", { details: `${path}: ${(e as Error).message}`, cause: e });
      }
    }
    await breakIfStale(path, staleMs);
    if (Date.now() >= deadline) {
      throw new CniError(CniErrorCode.TryAgainLater, "IPAM state is locked by another invocation", { details: path });
    }
    await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random())));
    delay = Math.min(delay * 2, 20);
  }
}
