/**
 * Allocation inspectors for IPAM plugins whose state the kit can read, so scenarios can check that no
 * address stays allocated.
 *
 * @packageDocumentation
 */

import { isIP } from "node:net";
import { readdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * The addresses `host-local` holds for a network: the file names under `<dataDir>/<network>` that are
 * IP addresses (its `last_reserved_ip.*` and `lock` files are skipped).
 */
export function hostLocalAllocations(dataDir: string, network: string): () => Promise<string[]> {
  return async () => {
    try {
      return (await readdir(join(dataDir, network))).filter((f) => isIP(f) !== 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  };
}
