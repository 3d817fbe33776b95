/**
 * esbuild plugins that make margay-ipam one self-contained, fast-starting file:
 * - `@margay/*` resolve to the workspace sources, and the two datastore seams (`memory-backend.ts`,
 *   `etcd-backend.ts`) to the one backend module each needs, so the memory path never loads the etcd
 *   client (gRPC costs ~250 ms to initialise);
 * - etcd3 reads its `.proto` files from disk next to its own module at load time; the bundle has no
 *   such directory, so the parsed definitions are embedded as JSON and loaded with `fromJSON`.
 *
 * Used by tsup.config.ts (the published artifact) and by `build-bundle.ts` (tests, benchmark).
 *
 * @packageDocumentation
 */

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Plugin } from "esbuild";

const PACKAGES = fileURLToPath(new URL("../../../../", import.meta.url));

const BACKENDS: Record<string, string> = {
  "memory-backend.ts": "datastore/src/memory/memory-datastore.ts",
  "etcd-backend.ts": "datastore/src/etcd/etcd-datastore.ts",
};

/** Resolves `@margay/<pkg>` to the workspace sources (and the datastore seams to their backend). */
export const workspaceSources: Plugin = {
  name: "margay-workspace-sources",
  setup(b) {
    b.onResolve({ filter: /^@margay\/[a-z-]+$/ }, (args) => {
      const pkg = args.path.slice("@margay/".length);
      if (pkg === "datastore") {
        const seam = Object.keys(BACKENDS).find((f) => args.importer.endsWith(`/cni/ipam/${f}`));
        if (seam !== undefined) return { path: join(PACKAGES, BACKENDS[seam]!) };
      }
      return { path: join(PACKAGES, pkg, "src/index.ts") };
    });
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
