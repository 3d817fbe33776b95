/**
 * The on-disk result cache of the runtime side (libcni keeps it in `/var/lib/cni/results`): ADD stores
 * the result so DEL and CHECK can pass it as `prevResult`, and GC knows which attachments exist.
 *
 * @packageDocumentation
 */

import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** One cached attachment. */
export interface CachedAttachment {
  /** Format marker. */
  kind: "cniCacheV1";
  /** Network name. */
  networkName: string;
  /** Container id. */
  containerId: string;
  /** Interface name. */
  ifname: string;
  /** `CNI_ARGS` pairs of the ADD. */
  cniArgs?: Record<string, string> | undefined;
  /** Capability arguments of the ADD. */
  capabilityArgs?: Record<string, unknown> | undefined;
  /** The configuration list used, so GC can DEL an attachment whose config has changed. */
  config: unknown;
  /** Raw result of the last plugin of the chain, in the list's version. */
  result: Record<string, unknown>;
  /** Namespace path of the ADD. */
  netns?: string | undefined;
}

/** Key of an attachment. */
export interface AttachmentKey {
  /** Network name. */
  networkName: string;
  /** Container id. */
  containerId: string;
  /** Interface name. */
  ifname: string;
}

/** Options of {@link createResultCache}. */
export interface ResultCacheOptions {
  /** Cache directory; results go in `<dir>/results`. Default: `/var/lib/cni` (libcni's). */
  dir?: string | undefined;
}

/** Default cache directory (libcni's). */
export const DEFAULT_CACHE_DIR = "/var/lib/cni";

/** Cached results by attachment. */
export interface ResultCache {
  /** Directory holding the cache files. */
  readonly resultsDir: string;
  /** Stores (replaces) an attachment. */
  put(entry: CachedAttachment): Promise<void>;
  /** Reads an attachment, or undefined. */
  get(key: AttachmentKey): Promise<CachedAttachment | undefined>;
  /** Removes an attachment (no error when absent). */
  delete(key: AttachmentKey): Promise<void>;
  /** Every cached attachment of a network. */
  list(networkName: string): Promise<CachedAttachment[]>;
}

function fileName(k: AttachmentKey): string {
  // Names are validated (no '/'), so joining them cannot escape the directory.
  return `${k.networkName}-${k.containerId}-${k.ifname}`;
}

/** Creates a file-per-attachment cache; writes go through a temp file and a rename. */
export function createResultCache(options: ResultCacheOptions = {}): ResultCache {
  const resultsDir = join(options.dir ?? DEFAULT_CACHE_DIR, "results");
  const readEntry = async (file: string): Promise<CachedAttachment | undefined> => {
    try {
      const v = JSON.parse(await readFile(join(resultsDir, file), "utf8")) as CachedAttachment;
      return v?.kind === "cniCacheV1" ? v : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    resultsDir,
    async put(entry) {
      await mkdir(resultsDir, { recursive: true, mode: 0o700 });
      const target = join(resultsDir, fileName(entry));
      const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
      await writeFile(tmp, JSON.stringify(entry), { mode: 0o600 });
      await rename(tmp, target);
    },
    get: (key) => readEntry(fileName(key)),
    async delete(key) {
      await rm(join(resultsDir, fileName(key)), { force: true });
    },
    async list(networkName) {
      let files: string[];
      try {
        files = await readdir(resultsDir);
      } catch {
        return [];
      }
      const out: CachedAttachment[] = [];
      for (const f of files) {
        if (!f.startsWith(`${networkName}-`) || f.includes(".tmp-")) continue;
        const e = await readEntry(f);
        if (e !== undefined && e.networkName === networkName) out.push(e);
      }
      return out;
    },
  };
}
