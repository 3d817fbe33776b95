import { defineConfig, type Options } from "tsup";

/**
 * Shared tsup settings: every package ships ESM + CJS + .d.ts for each public entry.
 * `entry` maps an output name (e.g. `index`, `testing/index`) to its source file.
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
    splitting: false,
    treeshake: true,
    ...overrides,
  });
}
