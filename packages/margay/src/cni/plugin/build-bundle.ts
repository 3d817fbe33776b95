/**
 * Bundles the `margay` CNI plugin into one CommonJS file from the workspace sources (tests and the
 * benchmark never run a stale build), wrapped with margay-ipam's V8 code-cache loader. The published
 * artifact is built the same way by tsup (see tsup.config.ts).
 *
 * @packageDocumentation
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { workspaceSources } from "../ipam/bundle-plugins.js";
import { wrapWithCodeCache } from "../ipam/code-cache.js";

/** Writes the executable to `outfile` (mode 755) and returns its size in bytes. */
export async function buildMargayPluginBundle(outfile: string): Promise<number> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL("./main.ts", import.meta.url))],
    outfile,
    write: false,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: true,
    keepNames: true,
    plugins: [workspaceSources],
    logLevel: "silent",
  });
  const text = wrapWithCodeCache(out.outputFiles[0]!.text);
  await mkdir(dirname(outfile), { recursive: true });
  await writeFile(outfile, text);
  await chmod(outfile, 0o755);
  return Buffer.byteLength(text);
}
