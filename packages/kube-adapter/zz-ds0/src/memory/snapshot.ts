/**
 * Snapshot files of the memory backend: the whole state (objects + revision) in one JSON document,
 * replaced atomically.
 *
 * Crash safety comes from the classic sequence: write a temp file in the same directory, fsync it,
 * rename it over the snapshot (atomic on POSIX file systems), then fsync the directory so the rename
 * itself is durable. A crash at any point leaves either the old or the new snapshot in place, never a torn
 * one; a leftover temp file is ignored and removed on the next start.
 */

import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { invalidError } from "../errors.js";

/** Format tag written into every snapshot; a file without it is refused rather than misread. */
export const SNAPSHOT_FORMAT = "margay.datastore.snapshot/v1";

/** One stored object as kept in a snapshot. `json` is the object's own JSON text. */
export interface SnapshotEntry {
  kind: string;
  namespace: string | undefined;
  name: string;
  createRevision: number;
  modRevision: number;
  json: string;
}

/** The persisted state. */
export interface SnapshotState {
  revision: number;
  entries: SnapshotEntry[];
}

/** Serialises a state. Object texts are embedded as JSON, not re-encoded strings, so the file is readable. */
export function encodeSnapshot(state: SnapshotState): string {
  const parts: string[] = [];
  for (const e of state.entries) {
    parts.push(
      `{"kind":${JSON.stringify(e.kind)},"namespace":${JSON.stringify(e.namespace ?? null)},` +
        `"name":${JSON.stringify(e.name)},"createRevision":${e.createRevision},` +
        `"modRevision":${e.modRevision},"object":${e.json}}`,
    );
  }
  return `{"format":"${SNAPSHOT_FORMAT}","revision":${state.revision},"objects":[\n${parts.join(",\n")}\n]}\n`;
}

interface RawEntry {
  kind: string;
  namespace: string | null;
  name: string;
  createRevision: number;
  modRevision: number;
  object: unknown;
}

/** Parses a snapshot; a malformed file fails with `invalid` (never silently as an empty store). */
export function decodeSnapshot(text: string, path: string): SnapshotState {
  let doc: { format?: unknown; revision?: unknown; objects?: unknown };
  try {
    doc = JSON.parse(text) as typeof doc;
  } catch (cause) {
    throw invalidError(`snapshot ${path} is not valid JSON`, { reason: "corrupt-snapshot" }, cause);
  }
  if (doc?.format !== SNAPSHOT_FORMAT || !Number.isSafeInteger(doc.revision) || !Array.isArray(doc.objects)) {
    throw invalidError(`snapshot ${path} is not a ${SNAPSHOT_FORMAT} document`, {
      reason: "corrupt-snapshot",
    });
  }
  const revision = doc.revision as number;
  const entries = (doc.objects as unknown[]).map((raw, i) => {
    const o = raw as Partial<RawEntry> | null;
    const object = o?.object as { metadata?: unknown } | null | undefined;
    // A hand-edited or foreign file must fail as `invalid`, not as a TypeError somewhere later.
    if (
      typeof o !== "object" ||
      o === null ||
      typeof o.kind !== "string" ||
      typeof o.name !== "string" ||
      (o.namespace !== null && typeof o.namespace !== "string") ||
      !Number.isSafeInteger(o.createRevision) ||
      !Number.isSafeInteger(o.modRevision) ||
      o.modRevision! > revision ||
      typeof object !== "object" ||
      object === null ||
      typeof object.metadata !== "object" ||
      object.metadata === null
    ) {
      throw invalidError(`snapshot ${path}: object ${i} is malformed`, { reason: "corrupt-snapshot" });
    }
    return {
      kind: o.kind,
      namespace: o.namespace ?? undefined,
      name: o.name,
      createRevision: o.createRevision!,
      modRevision: o.modRevision!,
      json: JSON.stringify(object),
    };
  });
  return { revision, entries };
}

const tempPrefix = (path: string) => `${basename(path)}.tmp-`;

/**
 * Reads the snapshot at `path` (undefined if there is none) and removes temp files left by a crash.
 * Synchronous on purpose: it runs once, at construction, so the factory can return a ready store.
 */
export function loadSnapshotSync(path: string): SnapshotState | undefined {
  const dir = dirname(path);
  const prefix = tempPrefix(path);
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith(prefix)) unlinkSync(join(dir, f));
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  return decodeSnapshot(text, path);
}

/** Atomically replaces the snapshot at `path` with `text` (temp file, fsync, rename, fsync dir). */
export async function writeSnapshotAtomic(path: string, text: string): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `${tempPrefix(path)}${process.pid}-${randomBytes(6).toString("hex")}`);
  let renamed = false;
  try {
    const fh = await open(tmp, "w", 0o600);
    try {
      await fh.writeFile(text, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    renamed = true;
    const dh = await open(dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } finally {
    if (!renamed) await unlink(tmp).catch(() => undefined);
  }
}
