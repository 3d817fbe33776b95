// @kubernetes/client-node is an ES module only. A CommonJS consumer's TypeScript (`module: node16` or
// `nodenext`) rejects a plain `import` of it in our `.d.cts` (TS1479), though only its types are used
// there. This rewrites those imports in the built `.d.cts` files as type-only imports with
// `resolution-mode: "import"`, which TypeScript (>= 5.3) allows from CommonJS declaration files.
// At run time the CJS build's `require` of the package works on Node >= 20.19 (require of ESM).
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";

const ESM_ONLY = ["@kubernetes/client-node"];
const DIST = new URL("../dist/", import.meta.url).pathname;

const files = (await readdir(DIST, { recursive: true })).filter((f) => f.endsWith(".d.cts"));
let importing = 0;
for (const file of files) {
  const path = join(DIST, file);
  const src = await readFile(path, "utf8");
  let out = src;
  for (const pkg of ESM_ONLY) {
    const quoted = `['"]${pkg.replace(/[/]/g, "\\/")}['"]`;
    out = out.replace(
      new RegExp(`^import (?:type )?(\\{[^}]*\\}) from ${quoted};$`, "gm"),
      (_m, names) => `import type ${names} from '${pkg}' with { 'resolution-mode': 'import' };`,
    );
  }
  if (out !== src) await writeFile(path, out);
  if (ESM_ONLY.some((pkg) => out.includes(`from '${pkg}'`))) importing++;
}
if (importing === 0) {
  throw new Error(`no .d.cts under ${DIST} imports ${ESM_ONLY.join(", ")}: is this step still needed?`);
}
