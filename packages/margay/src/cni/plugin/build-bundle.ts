/**
 * Bundles the `margay` CNI plugin into one CommonJS file from the workspace sources (tests and the
 * benchmark never run a stale build), builtins loaded on first use (`bundle-plugins.ts`), wrapped with
 * margay-ipam's V8 code-cache loader. The published
 * artifact is built the same way by tsup (see tsup.config.ts).
 *
 * @packageDocumentation
 */
import { fileURLToPath } from "node:url";
import { buildExecutable } from "../../build/executable.js";
import { workspaceSources } from "../ipam/bundle-plugins.js";
import { lazyPluginBuiltins } from "./bundle-plugins.js";

/** Writes the executable to `outfile` (mode 755) and returns its size in bytes. */
export async function buildMargayPluginBundle(outfile: string): Promise<number> {
  const { bytes } = await buildExecutable({
    entry: fileURLToPath(new URL("./main.ts", import.meta.url)),
    outfile,
    plugins: [lazyPluginBuiltins, workspaceSources],
    codeCache: true,
  });
  return bytes;
}
