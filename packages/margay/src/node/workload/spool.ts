/**
 * The CNI DEL spool: when the agent is down at DEL, the plugin removes what it can itself and leaves
 * the rest (endpoint, addresses) here; the agent finishes each spooled del when its workload API starts.
 * One JSON file per attachment, `<stateDir>/del-spool/<containerId>:<ifName>.json`, holding the del
 * request body; written atomically (temp file + rename), mode 0600 in a 0700 directory. Imports only
 * node:fs and node:path, so the plugin can bundle the writer.
 *
 * @packageDocumentation
 */
import { mkdir, readFile, readdir, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { WorkloadDelRequest } from "./protocol.js";

/** The spool directory under the agent's state directory. */
export function delSpoolDir(stateDir: string): string {
  return join(stateDir, "del-spool");
}

// Container ids and interface names never contain ':' or '/', so the name is unique and safe.
const fileOf = (req: Pick<WorkloadDelRequest, "containerId" | "ifName">) =>
  `${req.containerId}:${req.ifName}.json`;

/**
 * Spools a del for the agent (the plugin's side). Idempotent: a second spool of one attachment replaces
 * the first. The request is validated by the agent when it reads the spool, not here.
 */
export async function spoolDel(stateDir: string, req: WorkloadDelRequest): Promise<string> {
  const dir = delSpoolDir(stateDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, fileOf(req));
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(req), { mode: 0o600 });
  await rename(tmp, file);
  return file;
}

/** One spooled del as read back. */
export interface SpooledDel {
  readonly file: string;
  /** The parsed body, or the reason it could not be read. */
  readonly body: unknown;
  readonly error?: string | undefined;
}

/** Spooled dels, oldest name first; none when the directory does not exist. */
export async function readDelSpool(stateDir: string): Promise<SpooledDel[]> {
  const dir = delSpoolDir(stateDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as { code?: unknown }).code === "ENOENT") return [];
    throw e;
  }
  const out: SpooledDel[] = [];
  for (const name of names.filter((n) => n.endsWith(".json")).sort()) {
    const file = join(dir, name);
    try {
      out.push({ file, body: JSON.parse(await readFile(file, "utf8")) });
    } catch (e) {
      out.push({ file, body: undefined, error: (e as Error).message });
    }
  }
  return out;
}

/** Removes a spooled del that is done. */
export async function removeSpooled(file: string): Promise<void> {
  await unlink(file).catch((e: { code?: unknown }) => {
    if (e.code !== "ENOENT") throw e;
  });
}

/** Sets aside a spooled del that can never succeed (unreadable or invalid), keeping it for an operator. */
export async function rejectSpooled(file: string): Promise<void> {
  await rename(file, `${file}.rejected`).catch((e: { code?: unknown }) => {
    if (e.code !== "ENOENT") throw e;
  });
}
