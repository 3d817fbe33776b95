import { RenderedRuleAction, RenderedTierDefaultAction } from "@margay/dataplane-contract";
import { describe, expect, it } from "vitest";
import { RuleAction, TierDefaultAction } from "./index.js";

describe("deprecated update-stream action names", () => {
  it("stay exported for one release as aliases of the contract's Rendered* names", () => {
    expect(RuleAction).toBe(RenderedRuleAction);
    expect(TierDefaultAction).toBe(RenderedTierDefaultAction);
    expect(RuleAction.Allow).toBe("allow");
  });
});
