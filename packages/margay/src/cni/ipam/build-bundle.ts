/**
 * Bundles the margay-ipam executable into one CommonJS file with every dependency inlined, from the
 * workspace sources (so tests and the benchmark never run a stale build). The published artifact is
 * built the same way by tsup (see tsup.config.ts), then wrapped by {@link wrapWithCodeCache}.
 *
 * @packageDocumentation
 */

import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { embedEtcdProto, lazyCrypto, lazyEtcdBackend, workspaceSources } from "./bundle-plugins.js";
import { wrapWithCodeCache } from "./code-cache.js";

/** Writes the executable to `outfile` (mode 755, `#!/usr/bin/env node`) and returns its path. */
export async function buildMargayIpamBundle(outfile: string): Promise<string> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL("./main.ts", import.meta.url))],
    outfile,
    write: false,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // Less to read and compile at every start; names kept for error messages.
    minify: true,
    keepNames: true,
    plugins: [lazyEtcdBackend, lazyCrypto, workspaceSources, embedEtcdProto],
    logLevel: "silent",
  });
  await mkdir(dirname(outfile), { recursive: true });
  await writeFile(outfile, wrapWithCodeCache(out.outputFiles[0]!.text));
  await chmod(outfile, 0o755);
  return outfile;
}
