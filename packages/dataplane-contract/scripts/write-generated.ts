// `npm run generate`: writes the files scripts/generate.ts derives from the .proto.
import { readFileSync, writeFileSync } from "node:fs";
import { GENERATED_FILES, PROTO_FILE, generate } from "./generate.js";

const pkg = new URL("../", import.meta.url);
const files = generate(readFileSync(new URL(PROTO_FILE, pkg), "utf8"));
for (const path of Object.values(GENERATED_FILES)) writeFileSync(new URL(path, pkg), files[path]!);
