/**
 * Bundles margayctl into one CommonJS file with esbuild, exactly as tsup.config.ts does for
 * `dist/bin/margayctl.cjs` (same plugins), for a quick rebuild during development:
 * `npx tsx packages/margay/src/ctl/build-bundle.ts [outfile]`.
 *
 * @packageDocumentation
 */

import { fileURLToPath } from "node:url";
import { buildExecutable } from "../build/executable.js";
import { embedEtcdProto, lazyEtcdBackend, workspaceSources } from "../cni/ipam/bundle-plugins.js";
import { ctlMemorySeam } from "./bundle-plugins.js";

/** Writes the executable to `outfile` (mode 755) and returns its path. */
export async function buildMargayctlBundle(outfile: string): Promise<string> {
  await buildExecutable({
    entry: fileURLToPath(new URL("./main.ts", import.meta.url)),
    outfile,
    plugins: [ctlMemorySeam, lazyEtcdBackend, workspaceSources, embedEtcdProto],
    shebang: true,
  });
  return outfile;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2] ?? fileURLToPath(new URL("../../dist/bin/margayctl.cjs", import.meta.url));
  void buildMargayctlBundle(target).then((p) => console.log(p));
}
