import { cidrContains, type IpAddress, type IpCidr } from "@margay/api";
import { anyCidrContains, cidrOrThrow, ipOrThrow } from "../model/net.js";
import { portInRanges } from "../model/ports.js";
import { PROTOCOL_NUMBERS, protocolName, protocolNumber } from "../model/protocol.js";
import type { ProtocolSpec } from "../model/resources.js";
import type { StreamMirror } from "./stream-mirror.js";
import type {
  DirectionalTiers,
  FailsafePort,
  HostEndpointUpdate,
  IcmpMatch,
  RenderedRule,
  WorkloadEndpointUpdate,
} from "@margay/dataplane-contract";

/** A packet by addresses, as a dataplane sees it. */
export interface WirePacket {
  readonly srcIp: string;
  readonly dstIp: string;
  readonly protocol: ProtocolSpec;
  readonly srcPort?: number | undefined;
  readonly dstPort?: number | undefined;
  readonly icmp?: IcmpMatch | undefined;
}

interface P {
  readonly src: IpAddress;
  readonly dst: IpAddress;
  readonly protocol: number;
  readonly srcPort?: number | undefined;
  readonly dstPort?: number | undefined;
  readonly icmp?: IcmpMatch | undefined;
}

type Outcome = "allow" | "deny" | "pass" | undefined;

const cidrs = (list: readonly string[]): IpCidr[] => list.map((c) => cidrOrThrow(c));

function inSet(m: StreamMirror, id: string, ip: IpAddress): boolean {
  const set = m.ipSets.get(id);
  if (set === undefined) return false;
  for (const member of set.members) if (cidrContains(cidrOrThrow(member), ip)) return true;
  return false;
}

function inPortSet(m: StreamMirror, id: string, ip: IpAddress, protocol: number, port: number): boolean {
  return m.ipSets.get(id)?.members.has(`${ip.text},${protocolName(protocol)}:${port}`) === true;
}

function icmpHit(r: IcmpMatch, p: P): boolean {
  return p.icmp !== undefined && p.icmp.type === r.type && (r.code === undefined || r.code === p.icmp.code);
}

function side(
  m: StreamMirror,
  p: P,
  ip: IpAddress,
  port: number | undefined,
  nets: readonly string[],
  notNets: readonly string[],
  sets: readonly string[],
  notSets: readonly string[],
  ports: RenderedRule["srcPorts"],
  named: readonly string[],
  notPorts: RenderedRule["srcPorts"],
  notNamed: readonly string[],
): boolean {
  if (nets.length > 0 && !anyCidrContains(cidrs(nets), ip)) return false;
  if (notNets.length > 0 && anyCidrContains(cidrs(notNets), ip)) return false;
  if (!sets.every((id) => inSet(m, id, ip))) return false;
  if (notSets.some((id) => inSet(m, id, ip))) return false;
  if (ports.length + named.length > 0) {
    if (port === undefined) return false;
    if (!portInRanges(port, ports) && !named.some((id) => inPortSet(m, id, ip, p.protocol, port)))
      return false;
  }
  if (
    port !== undefined &&
    (portInRanges(port, notPorts) || notNamed.some((id) => inPortSet(m, id, ip, p.protocol, port)))
  ) {
    return false;
  }
  return true;
}

/** True if a rendered rule matches the packet, reading IP set members from the mirror. */
export function renderedRuleMatches(m: StreamMirror, r: RenderedRule, p: P): boolean {
  if (r.ipVersion !== undefined && r.ipVersion !== p.src.version) return false;
  if (r.protocol !== undefined && r.protocol !== p.protocol) return false;
  if (r.notProtocol !== undefined && r.notProtocol === p.protocol) return false;
  if (r.icmp !== undefined && !icmpHit(r.icmp, p)) return false;
  if (r.notIcmp !== undefined && icmpHit(r.notIcmp, p)) return false;
  return (
    side(
      m,
      p,
      p.src,
      p.srcPort,
      r.srcNets,
      r.notSrcNets,
      r.srcIpSetIds,
      r.notSrcIpSetIds,
      r.srcPorts,
      r.srcNamedPortIpSetIds,
      r.notSrcPorts,
      r.notSrcNamedPortIpSetIds,
    ) &&
    side(
      m,
      p,
      p.dst,
      p.dstPort,
      r.dstNets,
      r.notDstNets,
      r.dstIpSetIds,
      r.notDstIpSetIds,
      r.dstPorts,
      r.dstNamedPortIpSetIds,
      r.notDstPorts,
      r.notDstNamedPortIpSetIds,
    )
  );
}

function runRules(m: StreamMirror, rules: readonly RenderedRule[], p: P): Outcome {
  for (const r of rules) {
    if (!renderedRuleMatches(m, r, p)) continue;
    if (r.action === "log") continue;
    return r.action;
  }
  return undefined;
}

function runTiers(
  m: StreamMirror,
  tiers: DirectionalTiers,
  dir: "ingress" | "egress",
  p: P,
  endOfTierDrop: boolean,
): Outcome {
  for (const t of tiers[dir]) {
    let verdict: Outcome;
    for (const id of t.policyIds) {
      const pol = m.policies.get(id);
      // A policy the endpoint lists but the dataplane does not have: fail closed.
      if (pol === undefined) return "deny";
      verdict = runRules(m, dir === "ingress" ? pol.inbound : pol.outbound, p);
      if (verdict !== undefined) break;
    }
    if (verdict === "allow" || verdict === "deny") return verdict;
    if (verdict === "pass") continue;
    if (endOfTierDrop && t.defaultAction === "deny") return "deny";
  }
  return undefined;
}

function failsafe(list: readonly FailsafePort[], p: P, remote: IpAddress): boolean {
  return list.some(
    (f) =>
      PROTOCOL_NUMBERS[f.protocol] === p.protocol &&
      f.port === p.dstPort &&
      (f.net === undefined || cidrContains(cidrOrThrow(f.net), remote)),
  );
}

function judge(
  m: StreamMirror,
  ep: WorkloadEndpointUpdate | HostEndpointUpdate,
  dir: "ingress" | "egress",
  p: P,
): "allow" | "deny" {
  if (ep.kind === "host-endpoint-update") {
    if (
      failsafe(
        dir === "ingress" ? ep.failsafe.inbound : ep.failsafe.outbound,
        p,
        dir === "ingress" ? p.src : p.dst,
      )
    )
      return "allow";
    for (const [tiers, drop] of [
      [ep.untrackedTiers, false],
      [ep.preDnatTiers, false],
    ] as const) {
      const v = runTiers(m, tiers, dir, p, drop);
      if (v === "allow" || v === "deny") return v;
    }
  }
  const v = runTiers(m, ep.tiers, dir, p, true);
  if (v === "allow" || v === "deny") return v;
  for (const id of ep.profileIds) {
    const prof = m.profiles.get(id);
    if (prof === undefined) continue;
    const pv = runRules(m, dir === "ingress" ? prof.inbound : prof.outbound, p);
    if (pv === "allow" || pv === "deny") return pv;
  }
  return "deny";
}

function owner(m: StreamMirror, ip: IpAddress): WorkloadEndpointUpdate | HostEndpointUpdate | undefined {
  for (const w of m.workloadEndpoints.values())
    if (w.ipNetworks.some((c) => cidrContains(cidrOrThrow(c), ip))) return w;
  for (const h of m.hostEndpoints.values())
    if (h.expectedIps.some((a) => ipOrThrow(a).value === ip.value && ipOrThrow(a).version === ip.version))
      return h;
  return undefined;
}

/**
 * Judges a packet the way a dataplane that rendered the stream faithfully would: from the mirrored
 * endpoints, policies, profiles and IP set members only. Only the endpoints the stream carries (the
 * graph's local ones) have policy: the source's egress is judged if the source address is one of them,
 * the destination's ingress if the destination address is. The reference for dataplane implementations,
 * and the cross-check of the calculation graph against the reference evaluator.
 */
export function evaluateMirror(m: StreamMirror, packet: WirePacket): "allow" | "deny" {
  const p: P = {
    src: ipOrThrow(packet.srcIp),
    dst: ipOrThrow(packet.dstIp),
    protocol: protocolNumber(packet.protocol),
    srcPort: packet.srcPort,
    dstPort: packet.dstPort,
    icmp: packet.icmp,
  };
  const from = owner(m, p.src);
  const to = owner(m, p.dst);
  if (from !== undefined && judge(m, from, "egress", p) === "deny") return "deny";
  if (to !== undefined && judge(m, to, "ingress", p) === "deny") return "deny";
  return "allow";
}
