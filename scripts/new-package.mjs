// Scaffolds packages/<name> with the house layout: package.json with a complete exports map,
// tsconfig extending the strict base, tsup config, typedoc entry. Usage:
//   node scripts/new-package.mjs <name> "<description>" [subpath ...]
import { mkdirSync, writeFileSync, existsSync } from "node:fs";

const [name, description, ...subpaths] = process.argv.slice(2);
if (!name || !/^[a-z][a-z-]*$/.test(name))
  throw new Error("usage: new-package.mjs <name> <description> [subpath...]");
const dir = `packages/${name}`;
mkdirSync(`${dir}/src`, { recursive: true });

const entries = [["index", "src/index.ts"], ...subpaths.map((s) => [`${s}/index`, `src/${s}/index.ts`])];
const exportEntry = (out) => ({
  import: { types: `./dist/${out}.d.ts`, default: `./dist/${out}.js` },
  require: { types: `./dist/${out}.d.cts`, default: `./dist/${out}.cjs` },
});
const exportsMap = { ".": exportEntry("index") };
for (const s of subpaths) exportsMap[`./${s}`] = exportEntry(`${s}/index`);
exportsMap["./package.json"] = "./package.json";

const pkg = {
  name: `@margay/${name}`,
  version: "0.1.0",
  description,
  license: "Apache-2.0",
  type: "module",
  sideEffects: false,
  engines: { node: ">=20.19" },
  files: ["dist"],
  main: "./dist/index.cjs",
  module: "./dist/index.js",
  types: "./dist/index.d.cts",
  exports: exportsMap,
  scripts: {
    build: "tsup",
    typecheck: "tsc -p tsconfig.json --noEmit",
    "check:exports": "publint --strict && attw --pack . --profile node16",
  },
  dependencies: {},
};
if (!existsSync(`${dir}/package.json`))
  writeFileSync(`${dir}/package.json`, `${JSON.stringify(pkg, null, 2)}\n`);
writeFileSync(
  `${dir}/tsconfig.json`,
  `${JSON.stringify({ extends: "../../tsconfig.base.json", include: ["src", "bench"] }, null, 2)}\n`,
);
writeFileSync(
  `${dir}/tsup.config.ts`,
  `import { margayTsup } from "../../tsup.base";\n\nexport default margayTsup(${JSON.stringify(Object.fromEntries(entries))});\n`,
);
writeFileSync(
  `${dir}/typedoc.json`,
  `${JSON.stringify({ extends: ["../../typedoc.base.json"], entryPoints: entries.map(([, src]) => src) }, null, 2)}\n`,
);
for (const [, src] of entries) {
  if (!existsSync(`${dir}/${src}`)) {
    mkdirSync(`${dir}/${src.split("/").slice(0, -1).join("/")}`, { recursive: true });
  }
}
console.log(`scaffolded ${dir}`);
