/**
 * Validation of policy rules (Calico's `Rule`/`EntityRule` checks, including the cross-field ones).
 *
 * @packageDocumentation
 */
import { at, type Ctx, field, joinPath, object, show, typeName } from "../validation/context.js";
import { selector } from "../validation/fields.js";
import { annotations } from "../validation/names.js";
import { tryParseCidr } from "../net/ip.js";
import { cidr } from "../validation/net.js";
import { array, integer, noDuplicates, oneOf, string } from "../validation/primitives.js";
import {
  type EntityRule,
  type HTTPMatch,
  type HTTPPath,
  type ICMPFields,
  type Port,
  PROTOCOL_NAMES,
  type Protocol,
  parsePort,
  protocolNumber,
  protocolSupportsPorts,
  type Rule,
  RuleAction,
  type ServiceAccountMatch,
  type ServiceMatch,
} from "./rules.js";

/** Validates a protocol (name, case-insensitive, or number 1..255; numeric strings accepted). */
export function validateProtocol(v: unknown, path: string, ctx: Ctx): Protocol | undefined {
  if (typeof v === "number") return integer(v, path, ctx, 1, 255);
  if (typeof v === "string") {
    if (/^\d{1,3}$/.test(v)) return integer(Number(v), path, ctx, 1, 255);
    const name = PROTOCOL_NAMES.find((n) => n.toLowerCase() === v.toLowerCase());
    if (name !== undefined) return name;
  }
  return ctx.fail(
    path,
    `protocol must be one of ${PROTOCOL_NAMES.join(", ")} or a number 1..255, got ${show(v)}`,
  );
}

/** Validates a port match, canonicalising `"80"` and `"80:80"` to `80`. */
export function validatePort(v: unknown, path: string, ctx: Ctx): Port | undefined {
  if (typeof v !== "number" && typeof v !== "string") {
    return ctx.fail(path, `expected a port number, "min:max" range or port name, got ${typeName(v)}`);
  }
  const p = parsePort(v);
  if (p === undefined) {
    return ctx.fail(
      path,
      `invalid port ${show(v)}: expected 1..65535, "min:max" with min <= max, or a port name`,
    );
  }
  if (p.kind === "named") return p.name;
  return p.min === p.max ? p.min : `${p.min}:${p.max}`;
}

function validateIcmp(v: unknown, path: string, ctx: Ctx): ICMPFields | undefined {
  const o = object(v, path, ctx, ["type", "code"]);
  if (o === undefined) return undefined;
  const out: ICMPFields = {};
  const type = field(o, "type");
  const code = field(o, "code");
  if (type !== undefined) {
    const t = integer(type, joinPath(path, "type"), ctx, 0, 254);
    if (t !== undefined) out.type = t;
  }
  if (code !== undefined) {
    const c = integer(code, joinPath(path, "code"), ctx, 0, 255);
    if (c !== undefined) out.code = c;
    if (type === undefined) ctx.fail(joinPath(path, "code"), "ICMP code specified without an ICMP type");
  }
  return out;
}

function validateServiceAccounts(v: unknown, path: string, ctx: Ctx): ServiceAccountMatch | undefined {
  const o = object(v, path, ctx, ["names", "selector"]);
  if (o === undefined) return undefined;
  const out: ServiceAccountMatch = {};
  const names = field(o, "names");
  if (names !== undefined) {
    const n = array(names, joinPath(path, "names"), ctx, string);
    if (n !== undefined) out.names = n;
  }
  const sel = field(o, "selector");
  if (sel !== undefined) {
    const s = selector(sel, joinPath(path, "selector"), ctx);
    if (s !== undefined) out.selector = s;
  }
  return out;
}

function validateServices(v: unknown, path: string, ctx: Ctx): ServiceMatch | undefined {
  const o = object(v, path, ctx, ["name", "namespace"]);
  if (o === undefined) return undefined;
  const name = field(o, "name");
  if (name === undefined || name === "")
    return ctx.fail(joinPath(path, "name"), "must specify a service name");
  const n = string(name, joinPath(path, "name"), ctx);
  if (n === undefined) return undefined;
  const out: ServiceMatch = { name: n };
  const ns = field(o, "namespace");
  if (ns !== undefined) {
    const s = string(ns, joinPath(path, "namespace"), ctx);
    if (s !== undefined && s !== "") out.namespace = s;
  }
  return out;
}

const ENTITY_FIELDS = [
  "nets",
  "notNets",
  "selector",
  "notSelector",
  "namespaceSelector",
  "serviceAccounts",
  "services",
  "ports",
  "notPorts",
] as const;

/** Validates an entity rule (source or destination of a rule). */
export function validateEntityRule(v: unknown, path: string, ctx: Ctx): EntityRule | undefined {
  const o = object(v, path, ctx, ENTITY_FIELDS);
  if (o === undefined) return undefined;
  const out: EntityRule = {};
  for (const key of ["nets", "notNets"] as const) {
    const raw = field(o, key);
    if (raw === undefined) continue;
    const nets = array(raw, joinPath(path, key), ctx, (x, p, c) => cidr(x, p, c), { maxItems: 256 });
    if (nets !== undefined) out[key] = nets;
  }
  for (const key of ["selector", "notSelector"] as const) {
    const raw = field(o, key);
    if (raw === undefined || raw === "") continue;
    const s = selector(raw, joinPath(path, key), ctx);
    if (s !== undefined) out[key] = s;
  }
  const nsRaw = field(o, "namespaceSelector");
  if (nsRaw !== undefined && nsRaw !== "") {
    const s = selector(nsRaw, joinPath(path, "namespaceSelector"), ctx, { global: "alone" });
    if (s !== undefined) out.namespaceSelector = s;
  }
  const sa = field(o, "serviceAccounts");
  if (sa !== undefined) {
    const s = validateServiceAccounts(sa, joinPath(path, "serviceAccounts"), ctx);
    if (s !== undefined) out.serviceAccounts = s;
  }
  const svc = field(o, "services");
  if (svc !== undefined) {
    const s = validateServices(svc, joinPath(path, "services"), ctx);
    if (s !== undefined) out.services = s;
  }
  for (const key of ["ports", "notPorts"] as const) {
    const raw = field(o, key);
    if (raw === undefined) continue;
    const ports = array(raw, joinPath(path, key), ctx, validatePort, { maxItems: 50 });
    if (ports !== undefined) out[key] = ports;
  }
  if (out.services !== undefined) {
    const at = joinPath(path, "services");
    if (out.namespaceSelector !== undefined)
      ctx.fail(at, "cannot specify namespaceSelector and services on the same rule");
    if (out.selector !== undefined || out.notSelector !== undefined) {
      ctx.fail(at, "cannot specify selector/notSelector and services on the same rule");
    }
    if (out.serviceAccounts !== undefined)
      ctx.fail(at, "cannot specify serviceAccounts and services on the same rule");
    if ((out.nets?.length ?? 0) > 0 || (out.notNets?.length ?? 0) > 0) {
      ctx.fail(at, "cannot specify nets/notNets and services on the same rule");
    }
  }
  return out;
}

function validateHttp(v: unknown, path: string, ctx: Ctx): HTTPMatch | undefined {
  const o = object(v, path, ctx, ["methods", "paths"]);
  if (o === undefined) return undefined;
  const out: HTTPMatch = {};
  const methods = field(o, "methods");
  if (methods !== undefined) {
    const m = array(methods, joinPath(path, "methods"), ctx, string, { maxItems: 20 });
    if (m !== undefined) {
      noDuplicates(m, joinPath(path, "methods"), ctx);
      out.methods = m;
    }
  }
  const paths = field(o, "paths");
  if (paths !== undefined) {
    const p = array(
      paths,
      joinPath(path, "paths"),
      ctx,
      (x, at, c): HTTPPath | undefined => {
        const po = object(x, at, c, ["exact", "prefix"]);
        if (po === undefined) return undefined;
        const exact = field(po, "exact");
        const prefix = field(po, "prefix");
        if ((exact === undefined || exact === "") === (prefix === undefined || prefix === "")) {
          return c.fail(at, "exactly one of 'exact' or 'prefix' must be set");
        }
        const key = exact !== undefined && exact !== "" ? "exact" : "prefix";
        const val = string(key === "exact" ? exact : prefix, joinPath(at, key), c);
        if (val === undefined) return undefined;
        if (!val.startsWith("/") || /[? #]/.test(val) || val.length > 1024) {
          return c.fail(
            joinPath(at, key),
            `invalid path ${show(val)}: must start with '/' and not contain '?', '#' or ' '`,
          );
        }
        return key === "exact" ? { exact: val } : { prefix: val };
      },
      { maxItems: 20 },
    );
    if (p !== undefined) out.paths = p;
  }
  return out;
}

const RULE_FIELDS = [
  "action",
  "ipVersion",
  "protocol",
  "notProtocol",
  "icmp",
  "notICMP",
  "source",
  "destination",
  "http",
  "metadata",
] as const;

/** Where a rule sits, for the direction-specific checks. */
export type RuleDirection = "ingress" | "egress" | "profile";

/** Validates one rule, including Calico's cross-field checks (ports need a port protocol, etc.). */
export function validateRule(v: unknown, path: string, ctx: Ctx, direction: RuleDirection): Rule | undefined {
  const o = object(v, path, ctx, RULE_FIELDS);
  if (o === undefined) return undefined;
  const action = oneOf(field(o, "action"), joinPath(path, "action"), ctx, Object.values(RuleAction));
  const out: Partial<Rule> = {};
  if (action !== undefined) out.action = action;
  const ipv = field(o, "ipVersion");
  if (ipv !== undefined) {
    if (ipv === 4 || ipv === 6) out.ipVersion = ipv;
    else ctx.fail(joinPath(path, "ipVersion"), `must be 4 or 6, got ${show(ipv)}`);
  }
  for (const key of ["protocol", "notProtocol"] as const) {
    const raw = field(o, key);
    if (raw === undefined) continue;
    const p = validateProtocol(raw, joinPath(path, key), ctx);
    if (p !== undefined) out[key] = p;
  }
  for (const key of ["icmp", "notICMP"] as const) {
    const raw = field(o, key);
    if (raw === undefined) continue;
    const i = validateIcmp(raw, joinPath(path, key), ctx);
    if (i !== undefined) out[key] = i;
  }
  for (const key of ["source", "destination"] as const) {
    const raw = field(o, key);
    if (raw === undefined) continue;
    const e = validateEntityRule(raw, joinPath(path, key), ctx);
    if (e !== undefined) out[key] = e;
  }
  const http = field(o, "http");
  if (http !== undefined) {
    const h = validateHttp(http, joinPath(path, "http"), ctx);
    if (h !== undefined) out.http = h;
  }
  const meta = field(o, "metadata");
  if (meta !== undefined) {
    const mo = object(meta, joinPath(path, "metadata"), ctx, ["annotations"]);
    if (mo !== undefined) {
      const a = field(mo, "annotations");
      out.metadata = {};
      if (a !== undefined) {
        const ann = annotations(a, at(path, "metadata", "annotations"), ctx);
        if (ann !== undefined) out.metadata.annotations = ann;
      }
    }
  }
  checkRuleConsistency(out, path, ctx, direction);
  return action === undefined ? undefined : (out as Rule);
}

function checkRuleConsistency(rule: Partial<Rule>, path: string, ctx: Ctx, direction: RuleDirection): void {
  const portsOk = rule.protocol !== undefined && protocolSupportsPorts(rule.protocol);
  for (const side of ["source", "destination"] as const) {
    for (const key of ["ports", "notPorts"] as const) {
      if (!portsOk && (rule[side]?.[key]?.length ?? 0) > 0) {
        ctx.fail(
          joinPath(joinPath(path, side), key),
          "rules that specify ports must set protocol to TCP, UDP or SCTP",
        );
      }
    }
  }
  const proto = rule.protocol === undefined ? undefined : protocolNumber(rule.protocol);
  const notProto = rule.notProtocol === undefined ? undefined : protocolNumber(rule.notProtocol);
  if (rule.http !== undefined) {
    if (proto !== undefined && proto !== 6) {
      ctx.fail(
        joinPath(path, "protocol"),
        "rules that specify http must set protocol to TCP or leave it empty",
      );
    }
    if (rule.action !== undefined && rule.action !== "Allow") {
      ctx.fail(joinPath(path, "http"), "http match is only valid on Allow rules");
    }
    if (direction === "egress") ctx.fail(joinPath(path, "http"), "http match is not allowed in egress rules");
  }
  if (rule.icmp !== undefined && proto !== 1 && proto !== 58) {
    ctx.fail(joinPath(path, "icmp"), "rules that specify icmp must set protocol to ICMP or ICMPv6");
  }
  if (rule.notICMP !== undefined && proto !== 1 && proto !== 58) {
    ctx.fail(joinPath(path, "notICMP"), "rules that specify notICMP must set protocol to ICMP or ICMPv6");
  }
  if ((proto === 1 || notProto === 1) && rule.ipVersion !== undefined && rule.ipVersion !== 4) {
    ctx.fail(joinPath(path, "ipVersion"), "must be 4 with protocol ICMP");
  }
  if ((proto === 58 || notProto === 58) && rule.ipVersion !== undefined && rule.ipVersion !== 6) {
    ctx.fail(joinPath(path, "ipVersion"), "must be 6 with protocol ICMPv6");
  }
  // Every CIDR of a rule must be of one IP version, and agree with ipVersion if set.
  let seen4 = false;
  let seen6 = false;
  for (const side of ["source", "destination"] as const) {
    for (const key of ["nets", "notNets"] as const) {
      const nets = rule[side]?.[key];
      if (nets === undefined) continue;
      const at = joinPath(joinPath(path, side), key);
      const versions = new Set(nets.map((n) => tryParseCidr(n)?.version));
      const v4 = versions.has(4);
      const v6 = versions.has(6);
      if (rule.ipVersion !== undefined && ((v4 && rule.ipVersion !== 4) || (v6 && rule.ipVersion !== 6))) {
        ctx.fail(at, "rule ipVersion does not match the CIDR version");
      }
      if ((v4 && seen6) || (v6 && seen4) || (v4 && v6))
        ctx.fail(at, "rule contains both IPv4 and IPv6 CIDRs");
      seen4 ||= v4;
      seen6 ||= v6;
    }
  }
  if (direction === "egress" && rule.source?.services !== undefined) {
    ctx.fail(at(path, "source", "services"), "services are not allowed in an egress rule source");
  }
  if (direction === "ingress" && rule.destination?.services !== undefined) {
    ctx.fail(at(path, "destination", "services"), "services are not allowed in an ingress rule destination");
  }
  if (rule.destination?.services !== undefined) {
    if ((rule.destination.ports?.length ?? 0) > 0) {
      ctx.fail(at(path, "destination", "ports"), "cannot specify ports with a services match");
    }
    if ((rule.destination.notPorts?.length ?? 0) > 0) {
      ctx.fail(at(path, "destination", "notPorts"), "cannot specify notPorts with a services match");
    }
  }
}

/** Validates a list of rules. */
export function validateRules(
  v: unknown,
  path: string,
  ctx: Ctx,
  direction: RuleDirection,
): Rule[] | undefined {
  return array(v, path, ctx, (x, p, c) => validateRule(x, p, c, direction));
}

/** Validates a protocol that must carry ports (endpoint named ports). */
export function validatePortProtocol(v: unknown, path: string, ctx: Ctx): Protocol | undefined {
  const p = validateProtocol(v, path, ctx);
  if (p === undefined) return undefined;
  return protocolSupportsPorts(p)
    ? p
    : ctx.fail(path, "protocol does not support ports (use TCP, UDP or SCTP)");
}
