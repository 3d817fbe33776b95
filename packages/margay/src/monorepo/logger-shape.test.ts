/**
 * One logger shape across the packages: `@margay/api` exports the `Logger`; `@margay/bgp` and `@margay/cni`
 * import nothing of ours, so each declares the same shape. Here (the one package that sees all three) the
 * declarations are held equal, so a logger made for one is accepted by every other.
 */
import type { Logger as ApiLogger } from "@margay/api";
import { createRecordingLogger } from "@margay/api";
import type { Logger as BgpLogger } from "@margay/bgp";
import type { Logger as CniLogger } from "@margay/cni";
import { describe, expectTypeOf, it } from "vitest";

describe("the Logger shape", () => {
  it("is the same in api, bgp and cni", () => {
    expectTypeOf<BgpLogger>().toEqualTypeOf<ApiLogger>();
    expectTypeOf<CniLogger>().toEqualTypeOf<ApiLogger>();
    // And a value of one is a value of the others (what a caller actually does).
    const log: ApiLogger = createRecordingLogger();
    const asBgp: BgpLogger = log;
    const asCni: CniLogger = asBgp;
    expectTypeOf(asCni.child({ component: "x" })).toEqualTypeOf<CniLogger>();
  });
});
