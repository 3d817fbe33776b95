/**
 * Ownership of an embedded (memory + snapshot file) datastore by a running `margay-node`. The agent reads
 * its snapshot once at start and rewrites it after every write, so anybody else writing the file while it
 * runs is overwritten by the agent's next snapshot (a lost write). The agent therefore marks the snapshot
 * as its own for its lifetime: `<snapshot>.owner`, created with O_EXCL, holding its pid and process start
 * time (the identity `file-lock.ts` uses, so a reused pid is not mistaken for the owner). margayctl reads
 * the marker and, while its owner lives, opens the snapshot read-only.
 *
 * The marker is taken while holding `<snapshot>.lock` (the lock margay-ipam and margayctl hold across
 * load → write → save) and the snapshot is loaded under it too: a margayctl write either finishes before
 * the agent loads the file or sees the marker and writes nothing.
 *
 * A marker whose owner is dead (the agent crashed or was killed) is stale and taken over. Taking over is
 * serialised by a second O_EXCL file (`<marker>.break`) and staleness is re-checked while holding it, so
 * two agents starting together never both own the file.
 *
 * @packageDocumentation
 */

import { readFileSync, statSync, unlinkSync } from "node:fs";
import { createExclusive, processIdentity } from "../cni/ipam/file-lock.js";

/** Brand of {@link SnapshotOwnedError} (`Symbol.for`, shared across module copies). */
const BRAND: unique symbol = Symbol.for("@margay/margay/snapshot-owned-error") as never;

/** A marker still empty after this long was abandoned between create and write. */
const EMPTY_GRACE_MS = 2_000;
/** A break file older than this belongs to a breaker that died mid-break (a break takes microseconds). */
const BREAK_GRACE_MS = 5_000;

/** The ownership marker of `snapshotPath`. */
export function snapshotOwnerPath(snapshotPath: string): string {
  return `${snapshotPath}.owner`;
}

/** The live owner of a snapshot. */
export interface SnapshotOwnerInfo {
  /** The owning process. */
  readonly pid: number;
  /** The marker file. */
  readonly markerPath: string;
}

/** The snapshot is owned by another live process. */
export class SnapshotOwnedError extends Error {
  /** Always true; see {@link isSnapshotOwnedError}. */
  readonly [BRAND] = true as const;
  /** Always `"SnapshotOwnedError"`. */
  override readonly name = "SnapshotOwnedError";
  /** Always `"snapshot-owned"`. */
  readonly code = "snapshot-owned" as const;
  /** False: the owner has to stop first. */
  readonly retryable = false;
  /** The snapshot, its marker and the owner's pid. */
  readonly details: { readonly snapshot: string; readonly marker: string; readonly ownerPid: number };

  constructor(snapshotPath: string, owner: SnapshotOwnerInfo) {
    super(
      `the embedded datastore ${snapshotPath} is owned by margay-node (pid ${owner.pid}); ` +
        "one agent per snapshot file: stop it first",
    );
    this.details = { snapshot: snapshotPath, marker: owner.markerPath, ownerPid: owner.pid };
  }
}

/** True if `e` is a {@link SnapshotOwnedError} (brand check, not `instanceof`). */
export function isSnapshotOwnedError(e: unknown): e is SnapshotOwnedError {
  return typeof e === "object" && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
}

function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The owner named by the marker at `markerPath` if that process is alive, else undefined. */
function liveOwner(markerPath: string): SnapshotOwnerInfo | "stale" | undefined {
  const text = readOrUndefined(markerPath);
  if (text === undefined) return undefined;
  if (text === "") {
    let mtimeMs: number;
    try {
      mtimeMs = statSync(markerPath).mtimeMs;
    } catch {
      return undefined;
    }
    // Being written right now: treat as owned until the grace has passed.
    return Date.now() - mtimeMs > EMPTY_GRACE_MS ? "stale" : { pid: 0, markerPath };
  }
  const pid = Number.parseInt(text, 10);
  if (!Number.isInteger(pid) || pid <= 0) return "stale";
  return processIdentity(pid) === text.trim() ? { pid, markerPath } : "stale";
}

/**
 * The live agent owning `snapshotPath`, or undefined when there is none (no marker, or its owner is dead).
 * Never writes.
 */
export function readSnapshotOwner(snapshotPath: string): SnapshotOwnerInfo | undefined {
  const owner = liveOwner(snapshotOwnerPath(snapshotPath));
  return owner === "stale" ? undefined : owner;
}

function remove(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

/** Removes a stale marker, serialised by `<marker>.break` and re-checked under it. */
function breakStale(markerPath: string, me: string): void {
  const breaker = `${markerPath}.break`;
  if (!createExclusive(breaker, me)) {
    let mtimeMs: number | undefined;
    try {
      mtimeMs = statSync(breaker).mtimeMs;
    } catch {
      mtimeMs = undefined;
    }
    if (mtimeMs !== undefined && Date.now() - mtimeMs > BREAK_GRACE_MS) remove(breaker);
    return;
  }
  try {
    if (liveOwner(markerPath) === "stale") remove(markerPath);
  } finally {
    remove(breaker);
  }
}

/** Held ownership of a snapshot. */
export interface SnapshotOwnership {
  /** The marker file. */
  readonly markerPath: string;
  /** True when a stale marker (dead owner) was taken over. */
  readonly tookOver: boolean;
  /** Removes the marker if it is still ours (idempotent). */
  release(): void;
}

/**
 * Marks `snapshotPath` as owned by this process. Throws {@link SnapshotOwnedError} when another live
 * process owns it; takes a stale marker over. Call it while holding `<snapshot>.lock`.
 */
export function takeSnapshotOwnership(snapshotPath: string): SnapshotOwnership {
  const markerPath = snapshotOwnerPath(snapshotPath);
  const me = processIdentity(process.pid) ?? `${process.pid} ?`;
  let tookOver = false;
  // Bounded: each round either creates the marker, meets a live owner, or removes a stale marker.
  for (let attempt = 0; attempt < 100; attempt++) {
    if (createExclusive(markerPath, me)) {
      let held = true;
      return {
        markerPath,
        tookOver,
        release() {
          if (!held) return;
          held = false;
          if (readOrUndefined(markerPath) === me) remove(markerPath);
        },
      };
    }
    const owner = liveOwner(markerPath);
    if (owner === "stale") {
      tookOver = true;
      breakStale(markerPath, me);
      continue;
    }
    if (owner !== undefined) throw new SnapshotOwnedError(snapshotPath, owner);
  }
  throw new SnapshotOwnedError(snapshotPath, { pid: 0, markerPath });
}
