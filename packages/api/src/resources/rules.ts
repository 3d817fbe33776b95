/**
 * Policy rule building blocks shared by NetworkPolicy, GlobalNetworkPolicy and Profile, plus the
 * protocol and port types endpoints use. Semantics follow Calico's `Rule` and `EntityRule`.
 *
 * @packageDocumentation
 */
import { isRulePortName } from "../validation/names.js";

/** Protocol names accepted in rules and endpoint ports (matched case-insensitively, stored in this case). */
export const PROTOCOL_NAMES = ["TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite"] as const;
/** One of {@link PROTOCOL_NAMES}. */
export type ProtocolName = (typeof PROTOCOL_NAMES)[number];
/** An IP protocol: a name or a number 1..255. */
export type Protocol = ProtocolName | number;

/** IANA numbers of the named protocols. */
export const PROTOCOL_NUMBERS: Readonly<Record<ProtocolName, number>> = {
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ICMPv6: 58,
  SCTP: 132,
  UDPLite: 136,
};

/** The protocol number of a protocol name or number. */
export function protocolNumber(p: Protocol): number {
  return typeof p === "number" ? p : PROTOCOL_NUMBERS[p];
}

/** True if rules with this protocol may match ports (TCP, UDP, SCTP; as Calico's `SupportsPorts`). */
export function protocolSupportsPorts(p: Protocol): boolean {
  const n = protocolNumber(p);
  return n === 6 || n === 17 || n === 132;
}

/**
 * A port match: a number 1..65535, a range string `"min:max"`, or a named port (a name declared in an
 * endpoint's `ports`). Use {@link parsePort} to read one.
 */
export type Port = number | string;

/** A parsed {@link Port}. */
export type ParsedPort =
  | {
      /** A numeric port or range. */
      readonly kind: "range";
      /** First port, inclusive. */
      readonly min: number;
      /** Last port, inclusive. */
      readonly max: number;
    }
  | {
      /** A named port. */
      readonly kind: "named";
      /** The port name, resolved per endpoint. */
      readonly name: string;
    };

/** Parses a port match the way Calico's `numorstring.Port` does; undefined if invalid. */
export function parsePort(p: Port): ParsedPort | undefined {
  if (typeof p === "number") {
    return Number.isInteger(p) && p >= 1 && p <= 65535 ? { kind: "range", min: p, max: p } : undefined;
  }
  if (/^\d+$/.test(p)) {
    const n = Number(p);
    return n >= 1 && n <= 65535 ? { kind: "range", min: n, max: n } : undefined;
  }
  const m = /^(\d+):(\d+)$/.exec(p);
  if (m !== null) {
    const min = Number(m[1]);
    const max = Number(m[2]);
    return min >= 1 && max <= 65535 && min <= max ? { kind: "range", min, max } : undefined;
  }
  return isRulePortName(p) ? { kind: "named", name: p } : undefined;
}

/** Rule actions. */
export const RuleAction = {
  /** Accept the packet. */
  Allow: "Allow",
  /** Drop the packet. */
  Deny: "Deny",
  /** Log the packet and continue with the next rule. */
  Log: "Log",
  /** Skip the rest of this tier; continue with the next tier (or profiles). */
  Pass: "Pass",
} as const;
/** Union of {@link RuleAction} values. */
export type RuleAction = (typeof RuleAction)[keyof typeof RuleAction];

/** Policy directions. */
export const PolicyType = {
  /** Traffic to the selected endpoints. */
  Ingress: "Ingress",
  /** Traffic from the selected endpoints. */
  Egress: "Egress",
} as const;
/** Union of {@link PolicyType} values. */
export type PolicyType = (typeof PolicyType)[keyof typeof PolicyType];

/** ICMP type/code match. `code` requires `type` (a kernel limitation Calico keeps). */
export interface ICMPFields {
  /** ICMP type 0..254. */
  type?: number;
  /** ICMP code 0..255. */
  code?: number;
}

/** Service account match of an entity rule; `names` and `selector` are ANDed. */
export interface ServiceAccountMatch {
  /** Service account names (any of). */
  names?: string[];
  /** Selector over service account labels. */
  selector?: string;
}

/** Kubernetes Service match of an entity rule. */
export interface ServiceMatch {
  /** Service name. */
  name: string;
  /** Service namespace; defaults to the policy's namespace (required in global policies). */
  namespace?: string;
}

/** Source or destination match criteria of a rule. All present criteria must match. */
export interface EntityRule {
  /** Match addresses in any of these CIDRs (strictly masked). */
  nets?: string[];
  /** Match addresses in none of these CIDRs. */
  notNets?: string[];
  /** Match endpoints (and network sets) selected by this selector. */
  selector?: string;
  /** Match anything not selected by this selector (including non-endpoint traffic). */
  notSelector?: string;
  /** Restrict `selector` to endpoints in namespaces selected by this; `global()` = non-namespaced only. */
  namespaceSelector?: string;
  /** Match pods running as these service accounts. */
  serviceAccounts?: ServiceAccountMatch;
  /** Match a Kubernetes Service's endpoints. */
  services?: ServiceMatch;
  /** Match these ports (requires `protocol` TCP, UDP or SCTP on the rule). */
  ports?: Port[];
  /** Match ports other than these. */
  notPorts?: Port[];
}

/** HTTP path match: exactly one of `exact` or `prefix`. */
export interface HTTPPath {
  /** Match this path exactly. */
  exact?: string;
  /** Match paths starting with this. */
  prefix?: string;
}

/** HTTP request match (application layer); only valid on ingress Allow rules. */
export interface HTTPMatch {
  /** HTTP methods (any of), e.g. `GET`. */
  methods?: string[];
  /** Paths (any of). */
  paths?: HTTPPath[];
}

/** Free-form rule metadata. */
export interface RuleMetadata {
  /** Free-form key/values about the rule. */
  annotations?: Record<string, string>;
}

/** One policy rule: match criteria and an action. */
export interface Rule {
  /** What to do with matching traffic. */
  action: RuleAction;
  /** Restrict to IPv4 or IPv6. */
  ipVersion?: 4 | 6;
  /** Match this IP protocol. */
  protocol?: Protocol;
  /** Match any protocol but this. */
  notProtocol?: Protocol;
  /** Match this ICMP type/code. Requires `protocol` ICMP or ICMPv6. */
  icmp?: ICMPFields;
  /** Match any ICMP type/code but this. */
  notICMP?: ICMPFields;
  /** Match criteria on the traffic's source. */
  source?: EntityRule;
  /** Match criteria on the traffic's destination. */
  destination?: EntityRule;
  /** Application-layer match (ingress Allow rules only). */
  http?: HTTPMatch;
  /** Free-form metadata. */
  metadata?: RuleMetadata;
}

/** A named port declared by an endpoint, referenced by policy rules' named ports. */
export interface EndpointPort {
  /** IANA service name (e.g. `http`). */
  name: string;
  /** TCP, UDP or SCTP (or their numbers). */
  protocol: Protocol;
  /** 1..65535. */
  port: number;
}
