/**
 * esbuild plugins that make margay-ipam one self-contained, fast-starting file:
 * - `@margay/*` resolve to the workspace sources, and the two datastore seams (`memory-backend.ts`,
 *   `etcd-backend.ts`) to the one backend module each needs, so the memory path never loads the etcd
 *   client (gRPC costs ~250 ms to initialise);
 * - etcd3 reads its `.proto` files from disk next to its own module at load time; the bundle has no
 *   such directory, so the parsed definitions are embedded as JSON and loaded with `fromJSON`.
 *
 * - the etcd backend (etcd3, gRPC, protobufjs: ~1.2 MB of the ~1.5 MB) is embedded as a code *string*
 *   evaluated on first use: V8 must compile every function of a script it loads, even one never
 *   called, but scans a string literal almost for free — so the memory path does not pay ~30 ms to
 *   compile a gRPC client it never runs.
 *
 * - `node:crypto` resolves to `lazy-crypto.ts`: random bytes from `/dev/urandom`, the real module only
 *   on first use of anything else (it costs a few ms to load and the memory path needs none of it).
 *
 * Used by tsup.config.ts (the published artifact) and by `build-bundle.ts` (tests, benchmark).
 *
 * @packageDocumentation
 */

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { gzipSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

const PACKAGES = fileURLToPath(new URL("../../../../", import.meta.url));

const BACKENDS: Record<string, string> = {
  "memory-backend.ts": "datastore/src/memory/memory-datastore.ts",
  "etcd-backend.ts": "datastore/src/etcd/etcd-datastore.ts",
};

/** What `@margay/ipam` imports from `@margay/datastore` at run time (see {@link workspaceSources}). */
const DATASTORE_FOR_IPAM = "datastore/src/json-copy.ts";

/** Resolves `@margay/<pkg>` to the workspace sources (and the datastore seams to their backend). */
export const workspaceSources: Plugin = {
  name: "margay-workspace-sources",
  setup(b) {
    b.onResolve({ filter: /^@margay\/[a-z-]+$/ }, (args) => {
      const pkg = args.path.slice("@margay/".length);
      if (pkg === "datastore") {
        const seam = Object.keys(BACKENDS).find((f) => args.importer.endsWith(`/cni/ipam/${f}`));
        if (seam !== undefined) return { path: join(PACKAGES, BACKENDS[seam]!) };
        // @margay/ipam takes one value from the datastore, `freezeShared` (the rest are types): the
        // index would pull the etcd backend into the static bundle, so ipam gets the module that
        // defines it (the memory backend imports the same file: one `shared` mark). A new value
        // import from ipam fails this build with "No matching export", on purpose.
        if (args.importer.startsWith(join(PACKAGES, "ipam/src/"))) {
          return { path: join(PACKAGES, DATASTORE_FOR_IPAM) };
        }
      }
      return { path: join(PACKAGES, pkg, "src/index.ts") };
    });
  },
};

const LAZY_CRYPTO = fileURLToPath(new URL("./lazy-crypto.ts", import.meta.url));

/**
 * Resolves `node:crypto` to `lazy-crypto.ts` (see the module comment). An import of a name that module
 * does not export fails the build, so nothing silently gets `undefined`.
 */
export const lazyCrypto: Plugin = {
  name: "margay-lazy-crypto",
  setup(b) {
    b.onResolve({ filter: /^(node:)?crypto$/ }, () => ({ path: LAZY_CRYPTO }));
  },
};

/** Embeds etcd3's protocol definitions (see the module comment). */
export const embedEtcdProto: Plugin = {
  name: "margay-embed-etcd-proto",
  setup(b) {
    b.onLoad({ filter: /etcd3[\\/]lib[\\/]connection-pool\.js$/ }, async (args) => {
      const src = await readFile(args.path, "utf8");
      // The exact call in etcd3 1.1.x (a template literal in its compiled JS).
      const needle = ["(0, proto_loader_1.loadSync)(`$", "{__dirname}/../proto/rpc.proto`, {"].join("");
      if (!src.includes(needle))
        throw new Error("etcd3 connection-pool.js changed: cannot embed its proto files");
      const require = createRequire(args.path);
      const protobuf = require(
        require.resolve("protobufjs", { paths: [dirname(require.resolve("@grpc/proto-loader"))] }),
      ) as {
        Root: new () => { loadSync(f: string, o: object): { toJSON(): unknown } };
      };
      const json = new protobuf.Root()
        .loadSync(join(dirname(args.path), "../proto/rpc.proto"), { keepCase: true })
        .toJSON();
      const contents = src.replace(needle, `(0, proto_loader_1.fromJSON)(${JSON.stringify(json)}, {`);
      return { contents, loader: "js" };
    });
  },
};

/** The module id main.ts / backend.ts import the etcd seam by. */
const ETCD_SEAM = /^\.\/etcd-backend\.js$/;

/** Embeds the etcd backend as a lazily evaluated code string (see the module comment). */
export const lazyEtcdBackend: Plugin = {
  name: "margay-lazy-etcd-backend",
  setup(b) {
    b.onResolve({ filter: ETCD_SEAM }, (args) => ({
      path: join(args.resolveDir, "etcd-backend.ts"),
      namespace: "margay-lazy-etcd",
    }));
    b.onLoad({ filter: /.*/, namespace: "margay-lazy-etcd" }, async (args) => {
      const out = await build({
        entryPoints: [args.path],
        bundle: true,
        write: false,
        platform: "node",
        format: "cjs",
        target: "node20",
        minify: true,
        keepNames: true,
        plugins: [workspaceSources, embedEtcdProto],
        logLevel: "silent",
      });
      const code = `${out.outputFiles[0]!.text}\n//# sourceURL=margay-ipam/etcd-backend.js\n`;
      // Gzipped base64: a quarter of the bytes to read, and no escapes for the scanner to decode.
      const packed = gzipSync(code, { level: 9 }).toString("base64");
      const contents = [
        `const code = require("node:zlib").gunzipSync(Buffer.from(${JSON.stringify(packed)}, "base64")).toString("utf8");`,
        "const m = { exports: {} };",
        'new Function("exports", "require", "module", "__filename", "__dirname", code)(m.exports, require, m, __filename, __dirname);',
        "module.exports = m.exports;",
      ].join("\n");
      return { contents, loader: "js", resolveDir: dirname(args.path) };
    });
  },
};
