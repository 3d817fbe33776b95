// Regenerates proto/margay_dataplane.proto from the schema the code loads: `npm run proto`.
import { writeFileSync } from "node:fs";
import { DATAPLANE_PROTO } from "../src/protocol/schema.js";

writeFileSync(new URL("../proto/margay_dataplane.proto", import.meta.url), DATAPLANE_PROTO);
