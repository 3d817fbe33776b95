import type { RenderedRule } from "@margay/dataplane-contract";

/**
 * A {@link RenderedRule} that matches everything (`allow`, every match list empty), with `over` applied:
 * the one fixture builder the dataplane's tests and the conformance suite share, so a new rule field is
 * added in one place.
 */
export function renderedRule(over: Partial<RenderedRule> = {}): RenderedRule {
  return {
    action: "allow",
    index: 0,
    ruleId: "r",
    srcNets: [],
    notSrcNets: [],
    srcIpSetIds: [],
    notSrcIpSetIds: [],
    srcPorts: [],
    notSrcPorts: [],
    srcNamedPortIpSetIds: [],
    notSrcNamedPortIpSetIds: [],
    dstNets: [],
    notDstNets: [],
    dstIpSetIds: [],
    notDstIpSetIds: [],
    dstPorts: [],
    notDstPorts: [],
    dstNamedPortIpSetIds: [],
    notDstNamedPortIpSetIds: [],
    ...over,
  };
}
