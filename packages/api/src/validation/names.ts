import { type Ctx, joinPath, type Obj, setOwn, show, typeName } from "./context.js";

// Name formats follow Calico's validator (libcalico-go/lib/validator/v3), which follows Kubernetes.
const LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const SUBDOMAIN = `${LABEL}(\\.${LABEL})*`;

/** DNS-1123 subdomain (the default resource name format), at most 253 characters. */
export const DNS1123_SUBDOMAIN = new RegExp(`^${SUBDOMAIN}$`);
/** DNS-1123 label (tier and namespace names), at most 63 characters. */
export const DNS1123_LABEL = new RegExp(`^${LABEL}$`);
const NETWORK_POLICY_NAME = new RegExp(
  `^((${LABEL})(\\.${LABEL})?|((knp|ossg)\\.default\\.(${SUBDOMAIN})))$`,
);
// Converted AdminNetworkPolicies keep Calico's generated names (`kanp.adminnetworkpolicy.<name>`,
// `kbanp.baselineadminnetworkpolicy.<name>`), as converted Kubernetes policies do with `knp.default.`.
const GLOBAL_NETWORK_POLICY_NAME = new RegExp(
  `^((${LABEL}\\.)?${LABEL}|(kanp\\.adminnetworkpolicy|kbanp\\.baselineadminnetworkpolicy)\\.(${SUBDOMAIN}))$`,
);
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const INTERFACE_NAME = /^[a-zA-Z0-9_.-]{1,15}$/;
const RULE_PORT_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;
const CONTAINER_ID = /^[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

/** Which naming rule a resource name follows. */
export type NameRule = "subdomain" | "label" | "networkPolicy" | "globalNetworkPolicy";

/** Checks a resource/object name against a Calico naming rule. */
export function resourceName(
  v: unknown,
  path: string,
  ctx: Ctx,
  rule: NameRule = "subdomain",
): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a string, got ${typeName(v)}`);
  if (v === "") return ctx.fail(path, "must not be empty");
  const max = rule === "label" ? 63 : 253;
  if (v.length > max) return ctx.fail(path, `must be at most ${max} characters, got ${v.length}`);
  switch (rule) {
    case "label":
      return DNS1123_LABEL.test(v)
        ? v
        : ctx.fail(path, `must be a DNS-1123 label: lower-case alphanumerics and '-' (${show(v)})`);
    case "networkPolicy":
      return NETWORK_POLICY_NAME.test(v)
        ? v
        : ctx.fail(path, `must be a DNS-1123 label, optionally with one '.' (${show(v)})`);
    case "globalNetworkPolicy":
      return GLOBAL_NETWORK_POLICY_NAME.test(v)
        ? v
        : ctx.fail(path, `must be a DNS-1123 label, optionally with one '.' (${show(v)})`);
    default:
      return DNS1123_SUBDOMAIN.test(v)
        ? v
        : ctx.fail(path, `must be a DNS-1123 subdomain: lower-case alphanumerics, '-' and '.' (${show(v)})`);
  }
}

/** Problems with a Kubernetes qualified name (`[prefix/]name`), or undefined if valid. */
export function qualifiedNameProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  let name = key;
  if (slash !== -1) {
    const prefix = key.slice(0, slash);
    name = key.slice(slash + 1);
    if (prefix === "" || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) {
      return "prefix must be a DNS-1123 subdomain";
    }
  }
  if (name === "") return "name part must not be empty";
  if (name.length > 63) return "name part must be at most 63 characters";
  if (!QUALIFIED_NAME_PART.test(name)) {
    return "name part must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric";
  }
  return undefined;
}

/** Labels: qualified-name keys, values of at most 63 characters of the same alphabet (or empty). */
export function labels(v: unknown, path: string, ctx: Ctx): Record<string, string> | undefined {
  const o = stringMap(v, path, ctx);
  if (o === undefined) return undefined;
  for (const [k, val] of Object.entries(o)) {
    const at = joinPath(path, k);
    const problem = qualifiedNameProblem(k);
    if (problem !== undefined) ctx.fail(at, `invalid label key: ${problem}`);
    if (val.length > 63) ctx.fail(at, "label value must be at most 63 characters");
    else if (val !== "" && !QUALIFIED_NAME_PART.test(val)) {
      ctx.fail(
        at,
        "label value must be alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric",
      );
    }
  }
  return o;
}

/** Annotations: qualified-name keys (case-insensitive), total size at most 256 KiB. */
export function annotations(v: unknown, path: string, ctx: Ctx): Record<string, string> | undefined {
  const o = stringMap(v, path, ctx);
  if (o === undefined) return undefined;
  let total = 0;
  for (const [k, val] of Object.entries(o)) {
    const problem = qualifiedNameProblem(k.toLowerCase());
    if (problem !== undefined) ctx.fail(joinPath(path, k), `invalid annotation key: ${problem}`);
    total += k.length + val.length;
  }
  if (total > 256 * 1024)
    ctx.fail(path, `total size of annotations must be at most 262144 bytes, got ${total}`);
  return o;
}

/** An object of string values. */
export function stringMap(v: unknown, path: string, ctx: Ctx): Record<string, string> | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return ctx.fail(path, `expected an object of strings, got ${typeName(v)}`);
  }
  const out: Record<string, string> = {};
  let ok = true;
  for (const [k, val] of Object.entries(v as Obj)) {
    if (typeof val !== "string") {
      ctx.fail(joinPath(path, k), `expected a string, got ${typeName(val)}`);
      ok = false;
    } else setOwn(out, k, val);
  }
  return ok ? out : undefined;
}

/** A Linux interface name (at most 15 characters); `allowStar` also accepts `*` (host endpoints). */
export function interfaceName(v: unknown, path: string, ctx: Ctx, allowStar = false): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a string, got ${typeName(v)}`);
  if (allowStar && v === "*") return v;
  return INTERFACE_NAME.test(v)
    ? v
    : ctx.fail(path, `must be an interface name: 1-15 of [a-zA-Z0-9_.-] (${show(v)})`);
}

/** A named port as used by endpoints: an IANA service name (Kubernetes `IsValidPortName`). */
export function endpointPortName(v: unknown, path: string, ctx: Ctx): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a string, got ${typeName(v)}`);
  if (v.length === 0 || v.length > 15) return ctx.fail(path, "port name must be 1-15 characters");
  if (!/^[-a-z0-9]+$/.test(v)) return ctx.fail(path, "port name must be lower-case alphanumerics and '-'");
  if (!/[a-z]/.test(v)) return ctx.fail(path, "port name must contain at least one letter");
  if (v.includes("--")) return ctx.fail(path, "port name must not contain consecutive hyphens");
  if (v.startsWith("-") || v.endsWith("-"))
    return ctx.fail(path, "port name must not begin or end with a hyphen");
  return v;
}

/** True if `s` is a valid named port in a policy rule (`[a-zA-Z0-9_.-]{1,128}`). */
export function isRulePortName(s: string): boolean {
  return RULE_PORT_NAME.test(s);
}

/** A container id (alphanumerics and '-'). */
export function containerId(v: unknown, path: string, ctx: Ctx): string | undefined {
  if (typeof v !== "string") return ctx.fail(path, `expected a string, got ${typeName(v)}`);
  return CONTAINER_ID.test(v) ? v : ctx.fail(path, `invalid container id ${show(v)}`);
}
