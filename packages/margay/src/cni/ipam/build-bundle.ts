/**
 * Bundles the margay-ipam executable into one CommonJS file with every dependency inlined, from the
 * workspace sources (so tests and the benchmark never run a stale build). The published artifact is
 * built the same way by tsup (see tsup.config.ts), then wrapped by {@link wrapWithCodeCache}.
 *
 * @packageDocumentation
 */

import { fileURLToPath } from "node:url";
import { buildExecutable } from "../../build/executable.js";
import { embedEtcdProto, lazyCrypto, lazyEtcdBackend, workspaceSources } from "./bundle-plugins.js";

/** Writes the executable to `outfile` (mode 755, `#!/usr/bin/env node`) and returns its path. */
export async function buildMargayIpamBundle(outfile: string): Promise<string> {
  await buildExecutable({
    entry: fileURLToPath(new URL("./main.ts", import.meta.url)),
    outfile,
    plugins: [lazyEtcdBackend, lazyCrypto, workspaceSources, embedEtcdProto],
    codeCache: true,
  });
  return outfile;
}
