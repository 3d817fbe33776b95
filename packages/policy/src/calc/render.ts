import { cachedSelector } from "../model/selectors.js";
import type { NormalizedEntity, NormalizedRule } from "../model/normalize.js";
import type { Selector } from "@margay/api";
import { namedPortIpSetId, selectorIpSetId } from "./ip-set-id.js";
import type { RenderedRule } from "@margay/dataplane-contract";

/** What an IP set contains: the CIDRs of a selector's items, or one named port of them. */
export interface IpSetSpec {
  readonly id: string;
  readonly selector: Selector;
  /** Set for named-port sets. */
  readonly namedPort?: { readonly protocol: number; readonly name: string } | undefined;
}

/** Selector of a named-port set when the rule has no selector on that side: every endpoint. */
export const ALL_SELECTOR: Selector = cachedSelector("all()");

function entitySets(e: NormalizedEntity, protocol: number | undefined, out: IpSetSpec[]): void {
  if (e.selector !== undefined) out.push({ id: selectorIpSetId(e.selector), selector: e.selector });
  if (e.notSelector !== undefined) out.push({ id: selectorIpSetId(e.notSelector), selector: e.notSelector });
  if (protocol === undefined) return;
  const sel = e.selector ?? ALL_SELECTOR;
  for (const name of [...e.namedPorts, ...e.notNamedPorts]) {
    out.push({ id: namedPortIpSetId(sel, protocol, name), selector: sel, namedPort: { protocol, name } });
  }
}

/** The IP sets a rule needs (possibly with repeats). A rule that failed to normalize needs none. */
export function ruleIpSets(rule: NormalizedRule): IpSetSpec[] {
  const out: IpSetSpec[] = [];
  if (rule.invalid !== undefined) return out;
  entitySets(rule.src, rule.protocol, out);
  entitySets(rule.dst, rule.protocol, out);
  return out;
}

function side(e: NormalizedEntity, protocol: number | undefined) {
  const sel = e.selector ?? ALL_SELECTOR;
  const named = (names: readonly string[]) =>
    protocol === undefined ? [] : names.map((n) => namedPortIpSetId(sel, protocol, n));
  return {
    nets: e.nets.map((c) => c.text),
    notNets: e.notNets.map((c) => c.text),
    ipSetIds: e.selector === undefined ? [] : [selectorIpSetId(e.selector)],
    notIpSetIds: e.notSelector === undefined ? [] : [selectorIpSetId(e.notSelector)],
    ports: e.ports,
    notPorts: e.notPorts,
    namedPortIpSetIds: named(e.namedPorts),
    notNamedPortIpSetIds: named(e.notNamedPorts),
  };
}

/**
 * Renders a normalized rule for the dataplane: selectors become IP set ids. A rule that failed to
 * normalize renders as an unconditional Deny.
 */
export function renderRule(rule: NormalizedRule, ruleId: string): RenderedRule {
  const s = side(rule.src, rule.protocol);
  const d = side(rule.dst, rule.protocol);
  return {
    action: rule.action,
    index: rule.index,
    ruleId,
    ipVersion: rule.ipVersion,
    protocol: rule.protocol,
    notProtocol: rule.notProtocol,
    srcNets: s.nets,
    notSrcNets: s.notNets,
    srcIpSetIds: s.ipSetIds,
    notSrcIpSetIds: s.notIpSetIds,
    srcPorts: s.ports,
    notSrcPorts: s.notPorts,
    srcNamedPortIpSetIds: s.namedPortIpSetIds,
    notSrcNamedPortIpSetIds: s.notNamedPortIpSetIds,
    dstNets: d.nets,
    notDstNets: d.notNets,
    dstIpSetIds: d.ipSetIds,
    notDstIpSetIds: d.notIpSetIds,
    dstPorts: d.ports,
    notDstPorts: d.notPorts,
    dstNamedPortIpSetIds: d.namedPortIpSetIds,
    notDstNamedPortIpSetIds: d.notNamedPortIpSetIds,
    icmp: rule.icmp,
    notIcmp: rule.notIcmp,
  };
}
