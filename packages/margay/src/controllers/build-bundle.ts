/**
 * Bundles the margay-kube-controllers executable into one CommonJS file from the workspace sources, as
 * tsup does for the published artifact (same plugins, see tsup.config.ts), so tests never run a stale
 * build.
 *
 * @packageDocumentation
 */
import { fileURLToPath } from "node:url";
import { buildExecutable } from "../build/executable.js";
import { daemonBundlePlugins } from "../node/config/bundle-plugins.js";

/** Writes the executable to `outfile` (mode 755, `#!/usr/bin/env node`); returns its path and inputs. */
export async function buildKubeControllersBundle(
  outfile: string,
): Promise<{ path: string; bytes: number; inputs: string[] }> {
  const { bytes, inputs } = await buildExecutable({
    entry: fileURLToPath(new URL("./main.ts", import.meta.url)),
    outfile,
    plugins: daemonBundlePlugins,
    shebang: true,
  });
  return { path: outfile, bytes, inputs };
}
