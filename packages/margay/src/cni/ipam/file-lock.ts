/**
 * An exclusive lock between processes on one host: a lock file created with O_EXCL that names its
 * owner by pid *and* process start time. The memory backend's snapshot file is single-writer, so every
 * margay-ipam invocation holds this lock across load → allocate → save.
 *
 * Why not `flock(1)` through a helper process: it costs every CNI call ~12 ms (child_process, pipes
 * and a spawn) against a ≤ 20 ms budget. What the helper buys is crash safety, and that is handled
 * here: a lock whose owner is gone (no such pid, or the pid was reused by a process started at another
 * time) is stale. Breaking a stale lock is itself serialised by a second O_EXCL file (`<lock>.break`),
 * and the breaker re-checks staleness while holding it, so it can never delete a live owner's lock: a
 * lock file is only ever unlinked by its owner or by the single breaker that just proved it dead.
 *
 * The file operations are synchronous on purpose: an invocation does nothing else while it takes or
 * drops the lock, and each async call would cost a thread-pool round trip for a microsecond syscall.
 *
 * @packageDocumentation
 */

import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from "node:fs";
import { backoffDelay, sleep } from "@margay/api";
import { CniError, CniErrorCode } from "@margay/cni";

/** Options of {@link acquireFileLock}. */
export interface FileLockOptions {
  /** Give up after this long with a code-11 (try again later) error. Default 10 000 ms. */
  timeoutMs?: number | undefined;
}

/** A held lock. */
export interface FileLock {
  /** Releases the lock (idempotent). */
  release(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A lock file that is still empty after this long was abandoned between create and write. */
const EMPTY_GRACE_MS = 2_000;
/** A break file older than this belongs to a breaker that died mid-break (a break takes microseconds). */
const BREAK_GRACE_MS = 5_000;

/** `<pid> <start time in clock ticks since boot>` of a process, or undefined if it does not exist. */
export function processIdentity(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime); fields after the parenthesised command start at field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return `${pid} ${fields[19]}`;
  } catch {
    return undefined;
  }
}

function isStale(path: string): boolean {
  let text: string;
  let mtimeMs: number;
  try {
    text = readFileSync(path, "utf8");
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return false; // gone: the next create attempt decides
  }
  if (text === "") return Date.now() - mtimeMs > EMPTY_GRACE_MS;
  const pid = Number.parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) return true;
  return processIdentity(pid) !== text.trim();
}

/**
 * Creates `path` with `content` only if it does not exist (O_EXCL, mode 0600): true if this call made it,
 * false if it was there. Other failures are thrown as they are.
 */
export function createExclusive(path: string, content: string): boolean {
  try {
    const fd = openSync(path, "wx", 0o600);
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
}

function tryCreate(path: string, content: string): boolean {
  try {
    return createExclusive(path, content);
  } catch (e) {
    throw new CniError(CniErrorCode.IoFailure, "cannot create lock file", {
      details: `${path}: ${(e as Error).message}`,
      cause: e,
    });
  }
}

function mtimeOf(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

function breakStale(path: string, me: string): void {
  const breaker = `${path}.break`;
  if (!tryCreate(breaker, me)) {
    const mtimeMs = mtimeOf(breaker);
    if (mtimeMs !== undefined && Date.now() - mtimeMs > BREAK_GRACE_MS) remove(breaker);
    return;
  }
  try {
    // Re-checked under the break file: only an owner unlinks its own lock, so what is proven dead here
    // cannot have been replaced by a live lock before the rm below.
    if (isStale(path)) remove(path);
  } finally {
    remove(breaker);
  }
}

/** Unlinks `path`; already gone is fine. */
function remove(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Polling of a held lock: 1, 2, 4, … 16 ms, each ±50% so contending invocations spread out. */
const LOCK_POLL = Object.freeze({ initialMs: 1, maxMs: 16, factor: 2, jitter: 0.5 });

/** Takes the lock at `path`, polling with jittered backoff; breaks it when its owner is dead. */
export async function acquireFileLock(path: string, options: FileLockOptions = {}): Promise<FileLock> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const me = processIdentity(process.pid) ?? `${process.pid} ?`;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    if (tryCreate(path, me)) {
      let held = true;
      const release = async () => {
        if (!held) return;
        held = false;
        // Only our own file: if it was (wrongly) broken and re-taken, the new owner keeps it.
        if (readOrUndefined(path) === me) remove(path);
      };
      return { release, [Symbol.asyncDispose]: release };
    }
    if (isStale(path)) {
      breakStale(path, me);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new CniError(CniErrorCode.TryAgainLater, "IPAM state is locked by another invocation", {
        details: path,
      });
    }
    await sleep(backoffDelay(attempt, LOCK_POLL));
  }
}
