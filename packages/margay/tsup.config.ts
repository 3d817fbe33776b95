import { chmod, readFile, writeFile } from "node:fs/promises";
import { defineConfig } from "tsup";
import { margayTsup } from "../../tsup.base";
import { embedEtcdProto, lazyCrypto, lazyEtcdBackend, workspaceSources } from "./src/cni/ipam/bundle-plugins";
import { wrapWithCodeCache } from "./src/cni/ipam/code-cache";

const MARGAY_IPAM = "dist/bin/margay-ipam.cjs";

export default [
  // `clean` is done by the build script: several configs cleaning the same outDir would race.
  margayTsup({ index: "src/index.ts" }, { clean: false }),
  // The margay-ipam CNI plugin: ONE CommonJS file, every dependency inlined (a CNI_PATH holds single
  // executables), heavy modules loaded lazily by main.ts, then wrapped with its V8 code-cache loader.
  defineConfig({
    entry: { "bin/margay-ipam": "src/cni/ipam/main.ts" },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    noExternal: [/.*/],
    esbuildPlugins: [lazyEtcdBackend, lazyCrypto, workspaceSources, embedEtcdProto],
    dts: false,
    clean: false,
    sourcemap: false,
    minify: true,
    keepNames: true,
    splitting: false,
    target: "node20",
    platform: "node",
    async onSuccess() {
      await writeFile(MARGAY_IPAM, wrapWithCodeCache(await readFile(MARGAY_IPAM, "utf8")));
      await chmod(MARGAY_IPAM, 0o755);
    },
  }),
];
