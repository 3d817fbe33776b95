/**
 * Bundles the margay-node executable into one CommonJS file from the workspace sources, as tsup does for
 * the published artifact (same plugins, see tsup.config.ts), so tests never run a stale build.
 *
 * @packageDocumentation
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { embedEtcdProto, workspaceSources } from "../../cni/ipam/bundle-plugins.js";
import { pinoWithoutTransports } from "./bundle-plugins.js";

/** Writes the executable to `outfile` (mode 755, `#!/usr/bin/env node`); returns its path and inputs. */
export async function buildMargayNodeBundle(outfile: string): Promise<{ path: string; inputs: string[] }> {
  const out = await build({
    entryPoints: [fileURLToPath(new URL("../main.ts", import.meta.url))],
    outfile,
    write: false,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: true,
    keepNames: true,
    banner: { js: "#!/usr/bin/env node" },
    plugins: [pinoWithoutTransports, workspaceSources, embedEtcdProto],
    metafile: true,
    logLevel: "silent",
  });
  await mkdir(dirname(outfile), { recursive: true });
  await writeFile(outfile, out.outputFiles[0]!.text);
  await chmod(outfile, 0o755);
  return { path: outfile, inputs: Object.keys(out.metafile.inputs) };
}
