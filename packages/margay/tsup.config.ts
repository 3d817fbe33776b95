import { chmod, readFile, writeFile } from "node:fs/promises";
import { defineConfig, type Options } from "tsup";
import { margayTsup } from "../../tsup.base";
import { embedEtcdProto, lazyCrypto, lazyEtcdBackend, workspaceSources } from "./src/cni/ipam/bundle-plugins";
import { wrapWithCodeCache } from "./src/cni/ipam/code-cache";
import { lazyPluginBuiltins } from "./src/cni/plugin/bundle-plugins";
import { ctlMemorySeam } from "./src/ctl/bundle-plugins";
import { daemonBundlePlugins } from "./src/node/config/bundle-plugins";

/**
 * An executable: one minified CommonJS file `dist/bin/<name>.cjs` with every dependency inlined, bundled
 * with `plugins`, mode 755. `codeCache`: wrapped with the V8 code-cache loader (which writes its own
 * `#!` line), as the CNI plugins are; otherwise a plain `#!/usr/bin/env node` file.
 */
function bundledBin(
  name: string,
  entry: string,
  plugins: NonNullable<Options["esbuildPlugins"]>,
  { codeCache = false } = {},
) {
  const out = `dist/bin/${name}.cjs`;
  return defineConfig({
    entry: { [`bin/${name}`]: entry },
    format: ["cjs"],
    outExtension: () => ({ js: ".cjs" }),
    noExternal: [/.*/],
    esbuildPlugins: [...plugins],
    ...(codeCache ? {} : { banner: { js: "#!/usr/bin/env node" } }),
    dts: false,
    clean: false,
    sourcemap: false,
    minify: true,
    keepNames: true,
    splitting: false,
    target: "node20",
    platform: "node",
    async onSuccess() {
      if (codeCache) await writeFile(out, wrapWithCodeCache(await readFile(out, "utf8")));
      await chmod(out, 0o755);
    },
  });
}

export default [
  // `clean` is done by the build script: several configs cleaning the same outDir would race.
  // The cluster lab (`testing`) bundles the etcd client: its proto files are embedded as for margay-ipam,
  // and the ESM build gets a `require` for the CommonJS modules bundled with it.
  margayTsup(
    { index: "src/index.ts", "testing/index": "src/testing/index.ts" },
    {
      clean: false,
      esbuildPlugins: [embedEtcdProto],
      banner: ({ format }) =>
        format === "esm"
          ? {
              js: 'import { createRequire as __margayRequire } from "node:module"; const require = __margayRequire(import.meta.url);',
            }
          : {},
    },
  ),
  // The margay-ipam CNI plugin: ONE CommonJS file, every dependency inlined (a CNI_PATH holds single
  // executables), heavy modules loaded lazily by main.ts, then wrapped with its V8 code-cache loader.
  bundledBin(
    "margay-ipam",
    "src/cni/ipam/main.ts",
    [lazyEtcdBackend, lazyCrypto, workspaceSources, embedEtcdProto],
    {
      codeCache: true,
    },
  ),
  // The margay CNI plugin: ONE CommonJS file (skeleton + workload API client only; the agent does the
  // work behind its socket), wrapped with the same V8 code-cache loader as margay-ipam.
  bundledBin("margay", "src/cni/plugin/main.ts", [lazyPluginBuiltins, workspaceSources], { codeCache: true }),
  // margay-node (the per-host agent) and margay-kube-controllers: ONE CommonJS file each with every
  // dependency inlined (etcd client with its proto files embedded, @kubernetes/client-node; pino writes
  // through pino.destination only, so no transport worker file is needed).
  bundledBin("margay-node", "src/node/main.ts", daemonBundlePlugins),
  bundledBin("margay-kube-controllers", "src/controllers/main.ts", daemonBundlePlugins),
  // margayctl: one CommonJS file like margay-ipam (etcd client embedded lazily; memory path without it).
  bundledBin("margayctl", "src/ctl/main.ts", [
    ctlMemorySeam,
    lazyEtcdBackend,
    workspaceSources,
    embedEtcdProto,
  ]),
];
