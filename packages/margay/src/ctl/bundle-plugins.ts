/**
 * The esbuild plugin that keeps margayctl's memory path free of the etcd client: `@margay/datastore`
 * imported by `memory-backend.ts` resolves to the memory backend module alone. (The etcd seam,
 * `etcd-backend.ts`, is embedded lazily by margay-ipam's `lazyEtcdBackend`.)
 *
 * @packageDocumentation
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin } from "esbuild";

const PACKAGES = fileURLToPath(new URL("../../../", import.meta.url));

/** Resolves the ctl's memory seam to `datastore/src/memory/memory-datastore.ts`. */
export const ctlMemorySeam: Plugin = {
  name: "margayctl-memory-seam",
  setup(b) {
    b.onResolve({ filter: /^@margay\/datastore$/ }, (args) =>
      args.importer.endsWith(join("ctl", "memory-backend.ts"))
        ? { path: join(PACKAGES, "datastore/src/memory/memory-datastore.ts") }
        : undefined,
    );
  },
};
