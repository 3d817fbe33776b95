/**
 * Bundles margayctl into one CommonJS file with esbuild, exactly as tsup.config.ts does for
 * `dist/bin/margayctl.cjs` (same plugins), for a quick rebuild during development:
 * `npx tsx packages/margay/src/ctl/build-bundle.ts [outfile]`.
 *
 * @packageDocumentation
 */

import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { embedEtcdProto, lazyEtcdBackend, workspaceSources } from "../cni/ipam/bundle-plugins.js";
import { ctlMemorySeam } from "./bundle-plugins.js";

/** Writes the executable to `outfile` (mode 755) and returns its path. */
export async function buildMargayctlBundle(outfile: string): Promise<string> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL("./main.ts", import.meta.url))],
    write: false,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: true,
    keepNames: true,
    banner: { js: "#!/usr/bin/env node" },
    plugins: [ctlMemorySeam, lazyEtcdBackend, workspaceSources, embedEtcdProto],
    logLevel: "silent",
  });
  await mkdir(dirname(outfile), { recursive: true });
  await writeFile(outfile, out.outputFiles[0]!.text);
  await chmod(outfile, 0o755);
  return outfile;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const target = process.argv[2] ?? fileURLToPath(new URL("../../dist/bin/margayctl.cjs", import.meta.url));
  void buildMargayctlBundle(target).then((p) => console.log(p));
}
