import type { Selector } from "@margay/api";
import type { IcmpMatch } from "@margay/dataplane-contract";
import type { IpAddress } from "@margay/api";
import { anyCidrContains } from "../model/net.js";
import type { NormalizedEntity, NormalizedRule } from "../model/normalize.js";
import { portInRanges } from "../model/ports.js";
import { protocolName } from "../model/protocol.js";

/** A packet as rules see it: addresses parsed, protocol as a number. */
export interface MatchPacket {
  readonly src: IpAddress;
  readonly dst: IpAddress;
  readonly protocol: number;
  readonly srcPort?: number | undefined;
  readonly dstPort?: number | undefined;
  readonly icmp?: IcmpMatch | undefined;
}

/** Answers the two questions rules ask about the cluster. */
export interface Membership {
  /** Is the address inside a CIDR of an item the selector matches? */
  inSelector(selector: Selector, ip: IpAddress): boolean;
  /** Does an item the selector matches own the address and a port of this name, protocol and number? */
  hasNamedPort(
    selector: Selector | undefined,
    name: string,
    protocol: number,
    ip: IpAddress,
    port: number,
  ): boolean;
}

/** Outcome of matching one rule: whether it matched and, if not, the first condition that failed. */
export interface RuleMatch {
  readonly matched: boolean;
  readonly reason: string;
}

const fmtRanges = (e: { ports: NormalizedEntity["ports"]; names: readonly string[] }): string =>
  [...e.ports.map((r) => (r.first === r.last ? String(r.first) : `${r.first}:${r.last}`)), ...e.names].join(
    ", ",
  );

function icmpText(m: IcmpMatch): string {
  return m.code === undefined ? `type ${m.type}` : `type ${m.type} code ${m.code}`;
}

function icmpMatches(m: IcmpMatch, p: MatchPacket): boolean {
  if (p.icmp === undefined || p.icmp.type !== m.type) return false;
  return m.code === undefined || p.icmp.code === m.code;
}

function entity(
  e: NormalizedEntity,
  side: "source" | "destination",
  ip: IpAddress,
  port: number | undefined,
  protocol: number,
  m: Membership,
): string | undefined {
  if (e.nets.length > 0 && !anyCidrContains(e.nets, ip)) {
    return `${side} ${ip.text} is not in nets [${e.nets.map((c) => c.text).join(", ")}]`;
  }
  if (e.notNets.length > 0 && anyCidrContains(e.notNets, ip)) {
    return `${side} ${ip.text} is in notNets [${e.notNets.map((c) => c.text).join(", ")}]`;
  }
  if (e.selector !== undefined && !m.inSelector(e.selector, ip)) {
    return `${side} ${ip.text} does not match selector ${e.selector.canonical}`;
  }
  if (e.notSelector !== undefined && m.inSelector(e.notSelector, ip)) {
    return `${side} ${ip.text} matches notSelector ${e.notSelector.canonical}`;
  }
  if (e.ports.length + e.namedPorts.length > 0) {
    const ok =
      port !== undefined &&
      (portInRanges(port, e.ports) ||
        e.namedPorts.some((n) => m.hasNamedPort(e.selector, n, protocol, ip, port)));
    if (!ok) {
      return `${side} port ${port ?? "(none)"} is not in [${fmtRanges({ ports: e.ports, names: e.namedPorts })}]`;
    }
  }
  if (e.notPorts.length + e.notNamedPorts.length > 0 && port !== undefined) {
    if (
      portInRanges(port, e.notPorts) ||
      e.notNamedPorts.some((n) => m.hasNamedPort(e.selector, n, protocol, ip, port))
    ) {
      return `${side} port ${port} is in notPorts [${fmtRanges({ ports: e.notPorts, names: e.notNamedPorts })}]`;
    }
  }
  return undefined;
}

/**
 * Matches a rule against a packet with Calico's semantics; on a miss, says which condition failed first.
 * A rule that failed to normalize matches everything (it is a Deny: fail closed).
 */
export function matchRule(rule: NormalizedRule, p: MatchPacket, m: Membership): RuleMatch {
  if (rule.invalid !== undefined)
    return { matched: true, reason: `invalid rule treated as Deny: ${rule.invalid}` };
  if (rule.ipVersion !== undefined && rule.ipVersion !== p.src.version) {
    return { matched: false, reason: `rule is IPv${rule.ipVersion} only` };
  }
  if (rule.protocol !== undefined && rule.protocol !== p.protocol) {
    return {
      matched: false,
      reason: `protocol ${protocolName(p.protocol)} is not ${protocolName(rule.protocol)}`,
    };
  }
  if (rule.notProtocol !== undefined && rule.notProtocol === p.protocol) {
    return { matched: false, reason: `protocol ${protocolName(p.protocol)} is excluded (notProtocol)` };
  }
  if (rule.icmp !== undefined && !icmpMatches(rule.icmp, p)) {
    return { matched: false, reason: `ICMP is not ${icmpText(rule.icmp)}` };
  }
  if (rule.notIcmp !== undefined && icmpMatches(rule.notIcmp, p)) {
    return { matched: false, reason: `ICMP ${icmpText(rule.notIcmp)} is excluded (notICMP)` };
  }
  const why =
    entity(rule.src, "source", p.src, p.srcPort, p.protocol, m) ??
    entity(rule.dst, "destination", p.dst, p.dstPort, p.protocol, m);
  if (why !== undefined) return { matched: false, reason: why };
  return { matched: true, reason: "all conditions match" };
}
