/**
 * Bundles a fixture plugin into one executable file (`#!/usr/bin/env node`) in `dir`, so tests exec it
 * like any other CNI plugin binary.
 */

import { chmod } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** Builds `src/__fixtures__/<name>.ts` into `<dir>/<binName>` and returns its path. */
export async function buildFixturePlugin(name: string, dir: string, binName: string): Promise<string> {
  const out = join(dir, binName);
  await build({
    entryPoints: [fileURLToPath(new URL(`./${name}.ts`, import.meta.url))],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    banner: { js: "#!/usr/bin/env node" },
    logLevel: "silent",
  });
  await chmod(out, 0o755);
  return out;
}
