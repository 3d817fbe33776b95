import { defineConfig } from "tsup";
import { margayTsup } from "../../tsup.base";

export default [
  // `clean` is done by the build script: two configs cleaning the same outDir would race.
  margayTsup({ index: "src/index.ts", "testing/index": "src/testing/index.ts" }, { clean: false }),
  // The kit's CLI: one ESM file with a shebang, not part of the library exports.
  defineConfig({
    entry: { "testing/cli": "src/testing/cli.ts" },
    format: ["esm"],
    dts: false,
    clean: false,
    sourcemap: true,
    esbuildOptions(options) {
      options.sourcesContent = false;
    },
    target: "node20",
    platform: "node",
    banner: { js: "#!/usr/bin/env node" },
  }),
];
