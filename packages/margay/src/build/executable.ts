/**
 * The one way the distribution's executables are bundled from the workspace sources (tsup's entries use
 * the same plugins; tests and the lab call these builders so they run the code of this tree, not a stale
 * `dist`): one minified CommonJS file for Node 20, written executable, optionally wrapped with the V8
 * code-cache loader.
 *
 * @packageDocumentation
 */

import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { build, type Plugin } from "esbuild";
import { wrapWithCodeCache } from "../cni/ipam/code-cache.js";

/** What to bundle. */
export interface ExecutableBuild {
  /** Absolute path of the entry module. */
  readonly entry: string;
  /** Output file (its directory is created). */
  readonly outfile: string;
  readonly plugins: readonly Plugin[];
  /** Start with `#!/usr/bin/env node`. */
  readonly shebang?: boolean | undefined;
  /** Wrap with the V8 code-cache loader (the CNI plugins, started once per call). */
  readonly codeCache?: boolean | undefined;
}

/** Bundles and writes one executable; returns its size in bytes and the source files it holds. */
export async function buildExecutable(spec: ExecutableBuild): Promise<{ bytes: number; inputs: string[] }> {
  const out = await build({
    entryPoints: [spec.entry],
    outfile: spec.outfile,
    write: false,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: true,
    keepNames: true,
    ...(spec.shebang === true ? { banner: { js: "#!/usr/bin/env node" } } : {}),
    plugins: [...spec.plugins],
    metafile: true,
    logLevel: "silent",
  });
  const bundled = out.outputFiles[0]!.text;
  const text = spec.codeCache === true ? wrapWithCodeCache(bundled) : bundled;
  await mkdir(dirname(spec.outfile), { recursive: true });
  await writeFile(spec.outfile, text);
  await chmod(spec.outfile, 0o755);
  return { bytes: Buffer.byteLength(text), inputs: Object.keys(out.metafile.inputs) };
}
