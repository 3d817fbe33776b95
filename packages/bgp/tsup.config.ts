import { margayTsup } from "../../tsup.base";

export default margayTsup({
  index: "src/index.ts",
  "wire/index": "src/wire/index.ts",
  "fsm/index": "src/fsm/index.ts",
  "rib/index": "src/rib/index.ts",
});
