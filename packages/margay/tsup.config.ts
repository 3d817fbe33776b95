import { defineConfig } from "tsup";
import { margayTsup } from "../../tsup.base";
import { embedEtcdProto, lazyEtcdBackend, workspaceSources } from "./src/cni/ipam/bundle-plugins";

export default [
  // `clean` is done by the build script: several configs cleaning the same outDir would race.
  margayTsup({ index: "src/index.ts" }, { clean: false }),
  // The margay-ipam CNI plugin: ONE CommonJS file, every dependency inlined (a CNI_PATH holds single
  // executables), heavy modules loaded lazily by main.ts.
  defineConfig({
    entry: { "bin/margay-ipam": "src/cni/ipam/main.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    noExternal: [/.*/],
    esbuildPlugins: [lazyEtcdBackend, workspaceSources, embedEtcdProto],
    banner: { js: "#!/usr/bin/env node" },
    dts: false,
    clean: false,
    sourcemap: false,
    minify: true,
    keepNames: true,
    splitting: false,
    target: "node20",
    platform: "node",
  }),
];
