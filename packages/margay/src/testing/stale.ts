/**
 * Clean-up of labs whose owner process died without closing them (a killed test run): each lab records
 * its owner's pid in `/run/margay-lab/<lab>.pid`; a lab whose owner is gone is stale.
 *
 * @packageDocumentation
 */
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "./process.js";

/** Where labs record their owner (tmpfs: gone after a reboot, as the namespaces are). */
export const LAB_OWNER_DIR = "/run/margay-lab";

/** Records that the current process owns the lab `labName` (`<prefix>-<suffix>`). */
export async function recordLabOwner(labName: string): Promise<void> {
  await mkdir(LAB_OWNER_DIR, { recursive: true });
  await writeFile(join(LAB_OWNER_DIR, `${labName}.pid`), `${process.pid}\n`);
}

/** Forgets the owner record of `labName`. */
export async function forgetLabOwner(labName: string): Promise<void> {
  await rm(join(LAB_OWNER_DIR, `${labName}.pid`), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Network namespaces whose names start with `prefix`. */
export async function listNamespaces(prefix = ""): Promise<string[]> {
  const out = await runCommand(["ip", "netns", "list"]);
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n !== "" && n.startsWith(prefix));
}

/** Kills what still runs in namespace `ns` and deletes it. */
export async function deleteNamespace(ns: string): Promise<void> {
  const pids = await runCommand(["ip", "netns", "pids", ns]).catch(() => "");
  for (const p of pids.split(/\s+/).filter((s) => /^\d+$/.test(s))) {
    try {
      process.kill(Number(p), "SIGKILL");
    } catch {}
  }
  await runCommand(["ip", "netns", "del", ns]).catch(() => undefined);
}

/**
 * Deletes the namespaces (and kills the processes in them) of every lab named `<prefix>-*` whose owner
 * process is no longer running, and those of a lab with no owner record at all (a lab records its owner
 * before it makes its first namespace and forgets it after deleting its last, so such a namespace was
 * left behind). Labs of live processes, even other test runs, are left alone. Returns the labs cleaned.
 */
export async function cleanStaleLabs(prefix = "mgl"): Promise<string[]> {
  let files: string[];
  try {
    files = await readdir(LAB_OWNER_DIR);
  } catch {
    files = [];
  }
  const cleaned: string[] = [];
  const owned = new Set(files.filter((f) => f.endsWith(".pid")).map((f) => f.slice(0, -".pid".length)));
  const labOf = new RegExp(`^(${prefix}-[0-9a-f]{6})-`);
  for (const ns of await listNamespaces(`${prefix}-`)) {
    const lab = labOf.exec(ns)?.[1];
    if (lab === undefined || owned.has(lab)) continue;
    await deleteNamespace(ns);
    if (!cleaned.includes(lab)) cleaned.push(lab);
  }
  for (const f of files) {
    if (!f.startsWith(`${prefix}-`) || !f.endsWith(".pid")) continue;
    const lab = f.slice(0, -".pid".length);
    const pid = Number((await readFile(join(LAB_OWNER_DIR, f), "utf8").catch(() => "")).trim());
    if (Number.isInteger(pid) && pid > 0 && alive(pid)) continue;
    for (const ns of await listNamespaces(`${lab}-`)) await deleteNamespace(ns);
    await forgetLabOwner(lab);
    cleaned.push(lab);
  }
  return cleaned;
}
