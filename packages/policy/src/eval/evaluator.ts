import { cidrContains, ipFromValue, type IpAddress, type Selector } from "@margay/api";
import { hostEndpointTiers, orderTiers, workloadPolicies } from "../calc/policy-sorter.js";
import type { FailsafePort, IcmpMatch, TierPolicies } from "@margay/dataplane-contract";
import { isPolicyError, PolicyError, PolicyErrorCode } from "../errors.js";
import { cidrOrThrow, ipOrThrow } from "../model/net.js";
import { DEFAULT_FAILSAFE_INBOUND, DEFAULT_FAILSAFE_OUTBOUND } from "../model/constants.js";
import {
  type NormalizedEndpoint,
  type NormalizedItem,
  type NormalizedPolicy,
  type NormalizedProfile,
  type NormalizedTier,
  normalizeHostEndpoint,
  normalizeNetworkSet,
  normalizePolicy,
  normalizeProfile,
  normalizeTier,
  normalizeWorkloadEndpoint,
} from "../model/normalize.js";
import { PROTOCOL_NUMBERS, protocolName, protocolNumber } from "../model/protocol.js";
import type { PolicyModelResource, ProtocolSpec } from "../model/resources.js";
import { type MatchPacket, type Membership, matchRule } from "./rule-match.js";

/** One end of a packet: a workload endpoint (`<namespace>/<name>`), a host endpoint, or an address. */
export type PeerRef =
  | { readonly workload: string }
  | { readonly hostEndpoint: string }
  | { readonly ip: string };

/** The packet to judge. Ports apply to TCP, UDP, SCTP and UDPLite; `icmp` to ICMP and ICMPv6. */
export interface Packet {
  readonly source: PeerRef;
  readonly destination: PeerRef;
  readonly protocol: ProtocolSpec;
  readonly srcPort?: number | undefined;
  readonly dstPort?: number | undefined;
  readonly icmp?: IcmpMatch | undefined;
  /** Address family to use when both ends are endpoints with both families. Default 4. */
  readonly family?: 4 | 6 | undefined;
}

/** Final or per-direction verdict. */
export type Verdict = "allow" | "deny";

/** Where a direction's verdict came from. */
export type PolicyDecision =
  | {
      readonly by: "rule";
      /** `policy`: normal tiers; `untracked`: doNotTrack; `pre-dnat`: preDNAT (host endpoints). */
      readonly stage: "policy" | "untracked" | "pre-dnat";
      readonly tier: string;
      readonly policy: string;
      readonly rule: number;
      readonly action: Verdict;
    }
  | { readonly by: "tier-default"; readonly tier: string; readonly action: "deny" }
  | { readonly by: "profile-rule"; readonly profile: string; readonly rule: number; readonly action: Verdict }
  | { readonly by: "no-profile"; readonly action: "deny" }
  | { readonly by: "failsafe"; readonly protocol: string; readonly port: number; readonly action: "allow" };

/**
 * @deprecated Use {@link PolicyDecision}; `@margay/bgp`'s `Decision` is the best-path result, a different
 * thing. Removed in the next minor release.
 */
export type Decision = PolicyDecision;

/** One thing the evaluator looked at, in order. */
export interface TraceStep {
  readonly stage: "failsafe" | "untracked" | "pre-dnat" | "policy" | "profile";
  readonly tier?: string | undefined;
  readonly policy?: string | undefined;
  readonly profile?: string | undefined;
  readonly rule?: number | undefined;
  readonly action?: string | undefined;
  readonly outcome: "matched" | "no-match" | "logged" | "passed" | "tier-default" | "missing";
  readonly reason: string;
}

/** The evaluation of one endpoint's policy in one direction. */
export interface DirectionTrace {
  readonly endpoint: string;
  readonly direction: "ingress" | "egress";
  readonly verdict: Verdict;
  readonly decision: PolicyDecision;
  readonly steps: readonly TraceStep[];
}

/** A resolved packet end. */
export interface ResolvedPeer {
  readonly ip: string;
  readonly endpoint?: { readonly type: "workload" | "host"; readonly id: string } | undefined;
}

/** What {@link PolicyEvaluator.evaluate} returns. */
export interface Evaluation {
  /** Allowed only if the source's egress and the destination's ingress both allow. */
  readonly verdict: Verdict;
  readonly source: ResolvedPeer;
  readonly destination: ResolvedPeer;
  /** The source endpoint's egress evaluation (absent when the source is not a known endpoint). */
  readonly egress?: DirectionTrace | undefined;
  /** The destination endpoint's ingress evaluation (absent when it is not a known endpoint). */
  readonly ingress?: DirectionTrace | undefined;
  /** Human-readable account: which tier, policy and rule decided, and why earlier ones did not. */
  readonly explanation: string;
}

/** Options of {@link createEvaluator}. */
export interface EvaluatorOptions {
  /** Default: Calico's `FailsafeInboundHostPorts`. */
  readonly failsafeInbound?: readonly FailsafePort[] | undefined;
  /** Default: Calico's `FailsafeOutboundHostPorts`. */
  readonly failsafeOutbound?: readonly FailsafePort[] | undefined;
}

/** The reference evaluator over one snapshot of the model. */
export interface PolicyEvaluator {
  /**
   * Judges a packet and explains the verdict.
   *
   * @throws {@link PolicyError} `unknown-endpoint` for an endpoint reference not in the model,
   *   `invalid-input` for a malformed address, protocol or mixed address families.
   */
  evaluate(packet: Packet): Evaluation;
}

interface Model {
  readonly tiers: Map<string, NormalizedTier>;
  readonly policies: NormalizedPolicy[];
  readonly profiles: Map<string, NormalizedProfile>;
  readonly items: { item: NormalizedItem; labels: Map<string, string> }[];
  readonly workloads: Map<string, NormalizedEndpoint>;
  readonly hosts: Map<string, NormalizedEndpoint>;
}

/**
 * Builds the reference evaluator. It evaluates straight from the resources, brute force (every selector
 * against every item's labels), independent of the incremental calculation graph, so the two can check
 * each other. Resources that cannot be read at all are skipped, as the graph skips them.
 */
export function createEvaluator(
  resources: Iterable<PolicyModelResource>,
  options: EvaluatorOptions = {},
): PolicyEvaluator {
  const model: Model = {
    tiers: new Map(),
    policies: [],
    profiles: new Map(),
    items: [],
    workloads: new Map(),
    hosts: new Map(),
  };
  const raw: NormalizedItem[] = [];
  for (const r of resources) {
    try {
      switch (r.kind) {
        case "Tier":
          model.tiers.set(r.metadata.name, normalizeTier(r));
          break;
        case "NetworkPolicy":
        case "GlobalNetworkPolicy":
          model.policies.push(normalizePolicy(r));
          break;
        case "Profile":
          model.profiles.set(r.metadata.name, normalizeProfile(r));
          break;
        case "WorkloadEndpoint": {
          const ep = normalizeWorkloadEndpoint(r);
          model.workloads.set(ep.id, ep);
          raw.push(ep);
          break;
        }
        case "HostEndpoint": {
          const ep = normalizeHostEndpoint(r);
          model.hosts.set(ep.id, ep);
          raw.push(ep);
          break;
        }
        case "NetworkSet":
        case "GlobalNetworkSet":
          raw.push(normalizeNetworkSet(r));
          break;
      }
    } catch (e) {
      if (!isPolicyError(e)) throw e;
    }
  }
  for (const item of raw) {
    const labels = new Map<string, string>();
    for (const p of item.parents) {
      const pl = model.profiles.get(p)?.labels ?? {};
      for (const k in pl) if (!labels.has(k)) labels.set(k, pl[k]!);
    }
    for (const k in item.labels) labels.set(k, item.labels[k]!);
    model.items.push({ item, labels });
  }
  const failsafeIn = options.failsafeInbound ?? DEFAULT_FAILSAFE_INBOUND;
  const failsafeOut = options.failsafeOutbound ?? DEFAULT_FAILSAFE_OUTBOUND;
  return { evaluate: (packet) => evaluate(model, failsafeIn, failsafeOut, packet) };
}

function resolve(
  model: Model,
  ref: PeerRef,
  family: 4 | 6,
  side: string,
): { ip: IpAddress; ep?: NormalizedEndpoint } {
  if ("ip" in ref) {
    const ip = ipOrThrow(ref.ip, `${side}.ip`);
    const owner = [...model.workloads.values(), ...model.hosts.values()].find((e) =>
      e.nets.some((c) => cidrContains(c, ip)),
    );
    return owner === undefined ? { ip } : { ip, ep: owner };
  }
  const ep = "workload" in ref ? model.workloads.get(ref.workload) : model.hosts.get(ref.hostEndpoint);
  const name = "workload" in ref ? ref.workload : ref.hostEndpoint;
  if (ep === undefined) {
    throw new PolicyError(PolicyErrorCode.UnknownEndpoint, `unknown endpoint ${JSON.stringify(name)}`, {
      path: side,
      value: ref,
    });
  }
  const net = ep.nets.find((c) => c.version === family) ?? ep.nets[0];
  if (net === undefined) {
    throw new PolicyError(PolicyErrorCode.InvalidInput, `endpoint ${name} has no address`, {
      path: side,
      value: ref,
    });
  }
  return { ip: ipFromValue(net.version, net.network), ep };
}

function failsafeHit(
  list: readonly FailsafePort[],
  p: MatchPacket,
  remote: IpAddress,
  port: number | undefined,
): FailsafePort | undefined {
  if (port === undefined) return undefined;
  return list.find(
    (f) =>
      PROTOCOL_NUMBERS[f.protocol] === p.protocol &&
      f.port === port &&
      (f.net === undefined || cidrContains(cidrOrThrow(f.net), remote)),
  );
}

interface Stage {
  readonly name: "untracked" | "pre-dnat" | "policy";
  readonly tiers: readonly TierPolicies[];
  /** Normal tiers drop at the end of a tier that gave no verdict; untracked and pre-DNAT fall through. */
  readonly endOfTierDrop: boolean;
}

function evaluateDirection(
  model: Model,
  membership: Membership,
  ep: NormalizedEndpoint,
  direction: "ingress" | "egress",
  p: MatchPacket,
  failsafe: readonly FailsafePort[],
): DirectionTrace {
  const steps: TraceStep[] = [];
  const done = (decision: PolicyDecision): DirectionTrace => ({
    endpoint: ep.type === "workload" ? `workload ${ep.id}` : `host endpoint ${ep.id}`,
    direction,
    verdict: decision.action,
    decision,
    steps,
  });
  const matching = model.policies.filter((pol) => selects(model, pol.selector, ep));
  const byId = new Map(matching.map((pol) => [pol.id, pol]));
  const stages: Stage[] = [];
  if (ep.type === "host") {
    const remote = direction === "ingress" ? p.src : p.dst;
    const port = p.dstPort;
    const hit = failsafeHit(failsafe, p, remote, port);
    if (hit !== undefined) {
      steps.push({
        stage: "failsafe",
        outcome: "matched",
        reason: `${hit.protocol}/${hit.port} is a failsafe port`,
      });
      return done({ by: "failsafe", protocol: hit.protocol, port: hit.port, action: "allow" });
    }
    const groups = hostEndpointTiers(matching, model.tiers);
    stages.push({ name: "untracked", tiers: groups.untrackedTiers[direction], endOfTierDrop: false });
    if (direction === "ingress")
      stages.push({ name: "pre-dnat", tiers: groups.preDnatTiers.ingress, endOfTierDrop: false });
    stages.push({ name: "policy", tiers: groups.tiers[direction], endOfTierDrop: true });
  } else {
    stages.push({
      name: "policy",
      tiers: orderTiers(workloadPolicies(matching), model.tiers, direction),
      endOfTierDrop: true,
    });
  }
  for (const stage of stages) {
    for (const tier of stage.tiers) {
      let passed = false;
      for (const id of tier.policyIds) {
        const pol = byId.get(id)!;
        const rules = direction === "ingress" ? pol.inbound : pol.outbound;
        if (rules.length === 0) {
          steps.push({
            stage: stage.name,
            tier: tier.tier,
            policy: id,
            outcome: "no-match",
            reason: `policy has no ${direction} rules`,
          });
        }
        for (const rule of rules) {
          const m = matchRule(rule, p, membership);
          const base = {
            stage: stage.name,
            tier: tier.tier,
            policy: id,
            rule: rule.index,
            action: rule.action,
          };
          if (!m.matched) {
            steps.push({ ...base, outcome: "no-match", reason: m.reason });
            continue;
          }
          if (rule.action === "log") {
            steps.push({ ...base, outcome: "logged", reason: m.reason });
            continue;
          }
          if (rule.action === "pass") {
            steps.push({ ...base, outcome: "passed", reason: `${m.reason}; Pass skips to the next tier` });
            passed = true;
            break;
          }
          steps.push({ ...base, outcome: "matched", reason: m.reason });
          return done({
            by: "rule",
            stage: stage.name,
            tier: tier.tier,
            policy: id,
            rule: rule.index,
            action: rule.action,
          });
        }
        if (passed) break;
      }
      if (passed) continue;
      if (tier.defaultAction === "pass" || !stage.endOfTierDrop) {
        steps.push({
          stage: stage.name,
          tier: tier.tier,
          outcome: "tier-default",
          reason: stage.endOfTierDrop
            ? "no verdict in tier; tier default action is Pass"
            : "no verdict; continue",
        });
        continue;
      }
      steps.push({
        stage: stage.name,
        tier: tier.tier,
        outcome: "tier-default",
        reason: "no policy in the tier gave a verdict: end-of-tier drop",
      });
      return done({ by: "tier-default", tier: tier.tier, action: "deny" });
    }
  }
  for (const id of ep.profiles) {
    const prof = model.profiles.get(id);
    if (prof === undefined) {
      steps.push({
        stage: "profile",
        profile: id,
        outcome: "missing",
        reason: "profile does not exist (allows nothing)",
      });
      continue;
    }
    const rules = direction === "ingress" ? prof.inbound : prof.outbound;
    let passed = false;
    for (const rule of rules) {
      const m = matchRule(rule, p, membership);
      const base = { stage: "profile" as const, profile: id, rule: rule.index, action: rule.action };
      if (!m.matched) {
        steps.push({ ...base, outcome: "no-match", reason: m.reason });
        continue;
      }
      if (rule.action === "log") {
        steps.push({ ...base, outcome: "logged", reason: m.reason });
        continue;
      }
      if (rule.action === "pass") {
        steps.push({ ...base, outcome: "passed", reason: `${m.reason}; Pass skips to the next profile` });
        passed = true;
        break;
      }
      steps.push({ ...base, outcome: "matched", reason: m.reason });
      return done({ by: "profile-rule", profile: id, rule: rule.index, action: rule.action });
    }
    if (!passed && rules.length === 0)
      steps.push({
        stage: "profile",
        profile: id,
        outcome: "no-match",
        reason: `profile has no ${direction} rules`,
      });
  }
  return done({ by: "no-profile", action: "deny" });
}

function selects(model: Model, sel: Selector, ep: NormalizedEndpoint): boolean {
  const entry = model.items.find((i) => i.item === ep);
  return entry !== undefined && sel.matches(entry.labels);
}

function makeMembership(model: Model): Membership {
  const cache = new Map<string, NormalizedItem[]>();
  const matching = (sel: Selector): NormalizedItem[] => {
    let list = cache.get(sel.id);
    if (list === undefined)
      cache.set(sel.id, (list = model.items.filter((i) => sel.matches(i.labels)).map((i) => i.item)));
    return list;
  };
  return {
    inSelector: (sel, ip) => matching(sel).some((i) => i.nets.some((c) => cidrContains(c, ip))),
    hasNamedPort: (sel, name, protocol, ip, port) =>
      (sel === undefined ? model.items.map((i) => i.item) : matching(sel)).some(
        (i) =>
          i.ports.some((pt) => pt.name === name && pt.protocol === protocol && pt.port === port) &&
          i.nets.some((c) => cidrContains(c, ip)),
      ),
  };
}

function describeDecision(d: PolicyDecision): string {
  switch (d.by) {
    case "rule":
      return `${d.action} by ${d.stage === "policy" ? "" : `${d.stage} `}rule ${d.rule} of policy ${d.policy} (tier ${d.tier})`;
    case "tier-default":
      return `deny at the end of tier ${d.tier} (a policy of the tier applied, none gave a verdict)`;
    case "profile-rule":
      return `${d.action} by rule ${d.rule} of profile ${d.profile}`;
    case "no-profile":
      return "deny: no policy or profile allowed it";
    case "failsafe":
      return `allow: failsafe ${d.protocol}/${d.port}`;
  }
}

function explain(t: DirectionTrace): string {
  const lines = [`${t.direction} of ${t.endpoint}: ${describeDecision(t.decision)}`];
  for (const s of t.steps) {
    const where =
      s.profile !== undefined
        ? `profile ${s.profile}`
        : s.policy !== undefined
          ? `${s.policy}`
          : s.tier !== undefined
            ? `tier ${s.tier}`
            : s.stage;
    const rule = s.rule !== undefined ? ` rule ${s.rule} (${s.action})` : "";
    lines.push(`  - ${where}${rule}: ${s.outcome}: ${s.reason}`);
  }
  return lines.join("\n");
}

function evaluate(
  model: Model,
  failsafeIn: readonly FailsafePort[],
  failsafeOut: readonly FailsafePort[],
  packet: Packet,
): Evaluation {
  const family = packet.family ?? 4;
  const src = resolve(model, packet.source, family, "source");
  const dst = resolve(model, packet.destination, src.ip.version, "destination");
  if (src.ip.version !== dst.ip.version) {
    throw new PolicyError(
      PolicyErrorCode.InvalidInput,
      "source and destination are of different address families",
      {
        value: packet,
      },
    );
  }
  const protocol = protocolNumber(packet.protocol, "protocol");
  const p: MatchPacket = {
    src: src.ip,
    dst: dst.ip,
    protocol,
    srcPort: packet.srcPort,
    dstPort: packet.dstPort,
    icmp: packet.icmp,
  };
  const membership = makeMembership(model);
  const egress =
    src.ep === undefined ? undefined : evaluateDirection(model, membership, src.ep, "egress", p, failsafeOut);
  const ingress =
    dst.ep === undefined ? undefined : evaluateDirection(model, membership, dst.ep, "ingress", p, failsafeIn);
  const verdict: Verdict = egress?.verdict === "deny" || ingress?.verdict === "deny" ? "deny" : "allow";
  const peer = (r: { ip: IpAddress; ep?: NormalizedEndpoint }): ResolvedPeer =>
    r.ep === undefined ? { ip: r.ip.text } : { ip: r.ip.text, endpoint: { type: r.ep.type, id: r.ep.id } };
  const head = `${verdict.toUpperCase()} ${protocolName(protocol)} ${src.ip.text}${packet.srcPort === undefined ? "" : `:${packet.srcPort}`} -> ${dst.ip.text}${packet.dstPort === undefined ? "" : `:${packet.dstPort}`}`;
  const parts = [head];
  parts.push(
    egress === undefined
      ? `egress: source ${src.ip.text} is not a known endpoint (no egress policy)`
      : explain(egress),
  );
  parts.push(
    ingress === undefined
      ? `ingress: destination ${dst.ip.text} is not a known endpoint (no ingress policy)`
      : explain(ingress),
  );
  return {
    verdict,
    source: peer(src),
    destination: peer(dst),
    egress,
    ingress,
    explanation: parts.join("\n"),
  };
}
