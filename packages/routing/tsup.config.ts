import { margayTsup } from "../../tsup.base";

export default margayTsup({ index: "src/index.ts" });
