import { margayTsup } from "../../tsup.base";

export default margayTsup({
  index: "src/index.ts",
  "testing/index": "src/testing/index.ts",
  "conformance/index": "src/conformance/index.ts",
});
