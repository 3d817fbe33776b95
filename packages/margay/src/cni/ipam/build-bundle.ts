/**
 * Bundles the margay-ipam executable into one CommonJS file with every dependency inlined, from the
 * workspace sources (so tests and the benchmark never run a stale build). The published artifact is
 * built the same way by tsup (see tsup.config.ts).
 *
 * @packageDocumentation
 */

import { chmod } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { embedEtcdProto, lazyEtcdBackend, workspaceSources } from "./bundle-plugins.js";

/** Writes the bundle to `outfile` (executable, `#!/usr/bin/env node`) and returns its path. */
export async function buildMargayIpamBundle(outfile: string): Promise<string> {
  await build({
    entryPoints: [fileURLToPath(new URL("./main.ts", import.meta.url))],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    banner: { js: "#!/usr/bin/env node" },
    // Less to read and compile at every start; names kept for error messages.
    minify: true,
    keepNames: true,
    plugins: [lazyEtcdBackend, workspaceSources, embedEtcdProto],
    logLevel: "silent",
  });
  await chmod(outfile, 0o755);
  return outfile;
}
