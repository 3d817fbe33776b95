import { defineConfig, type Options } from "tsup";

/**
 * Shared tsup settings: every package ships ESM + CJS + .d.ts for each public entry.
 * `entry` maps an output name (e.g. `index`, `testing/index`) to its source file.
 *
 * - `splitting` for both formats: entries of one package share chunks instead of each bundling the
 *   common modules again, so a class (an error type, say) is one class whichever subpath a consumer
 *   imports it from — and the code is shipped once.
 * - Source maps point at file names and lines only (`sourcesContent: false`): the sources themselves
 *   would more than double what an install downloads, for a debugger view few users open.
 */
export function margayTsup(entry: Record<string, string>, overrides: Options = {}) {
  return defineConfig({
    entry,
    format: ["esm", "cjs"],
    dts: true,
    clean: true,
    sourcemap: true,
    target: "node20",
    platform: "node",
    splitting: true,
    treeshake: true,
    esbuildOptions(options) {
      options.sourcesContent = false;
    },
    ...overrides,
  });
}
