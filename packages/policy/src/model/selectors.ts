import {
  canonicalSelector,
  type EntityRule,
  parseSelector,
  parseSelectorAst,
  type Selector,
  type SelectorNode,
  type ServiceAccountMatch,
} from "@margay/api";
import { PolicyError, PolicyErrorCode } from "../errors.js";
import {
  LABEL_NAMESPACE,
  LABEL_SERVICE_ACCOUNT,
  NAMESPACE_LABEL_PREFIX,
  SERVICE_ACCOUNT_LABEL_PREFIX,
} from "./constants.js";

const cache = new Map<string, Selector>();

/**
 * Parses a selector through a cache (policies repeat the same selectors many times).
 *
 * @throws {@link PolicyError} `invalid-input` with the parse error as `cause`.
 */
export function cachedSelector(text: string, path = "selector"): Selector {
  let sel = cache.get(text);
  if (sel === undefined) {
    try {
      sel = parseSelector(text);
    } catch (e) {
      throw new PolicyError(
        PolicyErrorCode.InvalidInput,
        `invalid selector ${JSON.stringify(text)}`,
        { path, value: text },
        {
          cause: e,
        },
      );
    }
    if (cache.size > 50_000) cache.clear();
    cache.set(text, sel);
  }
  return sel;
}

function parseAst(text: string, path: string): SelectorNode {
  try {
    return parseSelectorAst(text);
  } catch (e) {
    throw new PolicyError(
      PolicyErrorCode.InvalidInput,
      `invalid selector ${JSON.stringify(text)}`,
      { path, value: text },
      {
        cause: e,
      },
    );
  }
}

function prefixNode(node: SelectorNode, prefix: string): SelectorNode {
  switch (node.type) {
    case "all":
    case "global":
      return node;
    case "not":
      return { type: "not", operand: prefixNode(node.operand, prefix) };
    case "and":
    case "or":
      return { type: node.type, operands: node.operands.map((o) => prefixNode(o, prefix)) };
    default:
      return { ...node, label: prefix + node.label };
  }
}

/**
 * A namespace selector rewritten to run against endpoint labels, as Calico does: labels take the `pcns.`
 * prefix (endpoints inherit them from their namespace profile), `all()` means "any namespaced item" and
 * `global()` means "any non-namespaced item".
 */
function namespaceSelectorText(text: string, path: string): string {
  const rewrite = (node: SelectorNode): SelectorNode => {
    switch (node.type) {
      case "all":
        return { type: "has", label: LABEL_NAMESPACE };
      case "global":
        return { type: "not", operand: { type: "has", label: LABEL_NAMESPACE } };
      case "not":
        return { type: "not", operand: rewrite(node.operand) };
      case "and":
      case "or":
        return { type: node.type, operands: node.operands.map(rewrite) };
      default:
        return { ...node, label: NAMESPACE_LABEL_PREFIX + node.label };
    }
  };
  return canonicalSelector(rewrite(parseAst(text, path)));
}

function prefixedText(text: string, prefix: string, path: string): string {
  return canonicalSelector(prefixNode(parseAst(text, path), prefix));
}

const quote = (s: string): string => (s.includes("'") ? `"${s}"` : `'${s}'`);

/** The selector text of a service-account match (`pcsa.`-prefixed selector AND name list). */
export function serviceAccountSelectorText(sa: ServiceAccountMatch, path = "serviceAccounts"): string {
  const sel =
    sa.selector !== undefined && sa.selector !== ""
      ? prefixedText(sa.selector, SERVICE_ACCOUNT_LABEL_PREFIX, `${path}.selector`)
      : "";
  const names = sa.names ?? [];
  if (names.length === 0) return sel;
  const byName = canonicalSelector(
    parseAst(`${LABEL_SERVICE_ACCOUNT} in {${names.map(quote).join(", ")}}`, `${path}.names`),
  );
  return sel === "" ? byName : `(${sel}) && (${byName})`;
}

/**
 * The single selector an entity rule's `selector`, `namespaceSelector` and `serviceAccounts` combine into,
 * with Calico's semantics: in a namespaced policy, any selector field confines the match to the policy's
 * namespace unless a namespace selector says otherwise; returns `""` when the rule has no selector at all.
 */
export function entityRuleSelectorText(er: EntityRule, namespace: string | undefined, path: string): string {
  let nsSel = "";
  const nsField = er.namespaceSelector ?? "";
  if (nsField !== "") nsSel = namespaceSelectorText(nsField, `${path}.namespaceSelector`);
  else if (namespace !== undefined && namespace !== "") nsSel = `${LABEL_NAMESPACE} == ${quote(namespace)}`;
  const parts: string[] = [];
  if (er.serviceAccounts !== undefined) {
    const sa = serviceAccountSelectorText(er.serviceAccounts, `${path}.serviceAccounts`);
    if (sa !== "") parts.push(sa);
  }
  if (er.selector !== undefined && er.selector !== "") parts.push(er.selector);
  let sel = parts.length === 0 ? "" : parts.length === 1 ? parts[0]! : `(${parts.join(") && (")})`;
  const notSel = er.notSelector ?? "";
  if (nsSel !== "" && (sel !== "" || notSel !== "" || nsField !== "")) {
    sel = sel !== "" ? `(${nsSel}) && (${sel})` : nsSel;
  }
  return sel;
}

/**
 * The endpoint selector of a policy: a namespaced policy only selects endpoints in its namespace, a
 * global policy's `namespaceSelector` is folded in, and `serviceAccountSelector` is `pcsa.`-prefixed.
 */
export function policySelectorText(
  spec: {
    readonly selector?: string | undefined;
    readonly serviceAccountSelector?: string | undefined;
    readonly namespaceSelector?: string | undefined;
  },
  namespace: string | undefined,
  path = "spec",
): string {
  let sel = spec.selector ?? "";
  if (namespace !== undefined && namespace !== "") {
    const nsSel = `${LABEL_NAMESPACE} == ${quote(namespace)}`;
    sel = sel === "" ? nsSel : `(${sel}) && ${nsSel}`;
  } else if (spec.namespaceSelector !== undefined && spec.namespaceSelector !== "") {
    const nsSel = namespaceSelectorText(spec.namespaceSelector, `${path}.namespaceSelector`);
    sel = sel === "" ? nsSel : `(${sel}) && (${nsSel})`;
  }
  if (spec.serviceAccountSelector !== undefined && spec.serviceAccountSelector !== "") {
    const sa = prefixedText(
      spec.serviceAccountSelector,
      SERVICE_ACCOUNT_LABEL_PREFIX,
      `${path}.serviceAccountSelector`,
    );
    sel = sel === "" ? sa : `(${sel}) && (${sa})`;
  }
  return sel === "" ? "all()" : sel;
}
