/**
 * Label and field selectors as the API server parses and applies them (`k8s.io/apimachinery/pkg/labels`
 * and `pkg/fields`): `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`, joined
 * by commas (all must hold). Field selectors allow `=`, `==`, `!=` on the fields each type supports.
 *
 * @packageDocumentation
 */

import type { KubeObject } from "../kube-types.js";

/** A predicate over objects. */
export type ObjectPredicate = (object: KubeObject) => boolean;

/** A selector the server cannot parse; the message is the API server's wording. */
export class SelectorError extends Error {
  override readonly name = "SelectorError";
}

const KEY = String.raw`(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?`;
const VALUE = "(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)?";
const RE_NOT_EXISTS = new RegExp(`^!\\s*(${KEY})$`);
const RE_EXISTS = new RegExp(`^(${KEY})$`);
const RE_SET = new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^()]*)\\)$`);
const RE_CMP = new RegExp(`^(${KEY})\\s*(==|=|!=|>|<)\\s*(${VALUE})$`);
const RE_VALUE = new RegExp(`^${VALUE}$`);

/** Splits at commas outside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out.map((p) => p.trim());
}

type LabelTest = (labels: Readonly<Record<string, string>>) => boolean;

/**
 * Parses a label selector; the empty selector matches everything.
 *
 * @throws {@link SelectorError} on a malformed requirement.
 */
export function parseLabelSelector(selector: string): ObjectPredicate {
  if (selector.trim() === "") return () => true;
  const tests: LabelTest[] = [];
  for (const part of splitTop(selector)) {
    let m: RegExpExecArray | null;
    if ((m = RE_NOT_EXISTS.exec(part)) !== null) {
      const k = m[1]!;
      tests.push((l) => !(k in l));
    } else if ((m = RE_SET.exec(part)) !== null) {
      const k = m[1]!;
      const values = m[3]!.split(",").map((v) => v.trim());
      if (values.some((v) => !RE_VALUE.test(v))) {
        throw new SelectorError(
          `unable to parse requirement: invalid label value in ${JSON.stringify(part)}`,
        );
      }
      const set = new Set(values);
      tests.push(m[2] === "in" ? (l) => k in l && set.has(l[k]!) : (l) => !(k in l) || !set.has(l[k]!));
    } else if ((m = RE_CMP.exec(part)) !== null) {
      const [, k, op, v] = m as unknown as [string, string, string, string];
      if (op === "=" || op === "==") tests.push((l) => l[k] === v);
      else if (op === "!=") tests.push((l) => l[k] !== v);
      else {
        const n = Number(v);
        if (!Number.isInteger(n)) {
          throw new SelectorError(
            `unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer`,
          );
        }
        tests.push((l) => {
          const x = Number(l[k]);
          return k in l && Number.isInteger(x) && (op === ">" ? x > n : x < n);
        });
      }
    } else if ((m = RE_EXISTS.exec(part)) !== null) {
      const k = m[1]!;
      tests.push((l) => k in l);
    } else {
      throw new SelectorError(`unable to parse requirement: ${JSON.stringify(part)}`);
    }
  }
  return (o) => {
    const labels = o.metadata.labels ?? {};
    return tests.every((t) => t(labels));
  };
}

type FieldGetter = (o: KubeObject) => string;

const str = (v: unknown): string => (v === undefined || v === null ? "" : String(v));
const at =
  (...path: string[]): FieldGetter =>
  (o) => {
    let v: unknown = o;
    for (const p of path)
      v = typeof v === "object" && v !== null ? (v as Record<string, unknown>)[p] : undefined;
    return str(v);
  };

/** The fields each built-in type supports in field selectors (beyond `metadata.name`/`metadata.namespace`). */
const FIELDS: Readonly<Record<string, Readonly<Record<string, FieldGetter>>>> = {
  pods: {
    "spec.nodeName": at("spec", "nodeName"),
    "spec.restartPolicy": at("spec", "restartPolicy"),
    "spec.schedulerName": at("spec", "schedulerName"),
    "spec.serviceAccountName": at("spec", "serviceAccountName"),
    "spec.hostNetwork": (o) => str((o as { spec?: { hostNetwork?: boolean } }).spec?.hostNetwork ?? false),
    "status.phase": at("status", "phase"),
    "status.podIP": at("status", "podIP"),
    "status.nominatedNodeName": at("status", "nominatedNodeName"),
  },
  nodes: {
    "spec.unschedulable": (o) =>
      str((o as { spec?: { unschedulable?: boolean } }).spec?.unschedulable ?? false),
  },
  namespaces: { "status.phase": at("status", "phase") },
  services: { "spec.clusterIP": at("spec", "clusterIP"), "spec.type": at("spec", "type") },
};

/**
 * Parses a field selector for the resource `plural`; the empty selector matches everything.
 *
 * @throws {@link SelectorError} on a malformed requirement or a field the type does not support.
 */
export function parseFieldSelector(plural: string, selector: string, builtIn: boolean): ObjectPredicate {
  if (selector.trim() === "") return () => true;
  const fields: Record<string, FieldGetter> = {
    "metadata.name": at("metadata", "name"),
    "metadata.namespace": at("metadata", "namespace"),
    ...(FIELDS[plural] ?? {}),
  };
  const tests: ObjectPredicate[] = [];
  for (const part of selector.split(",").map((p) => p.trim())) {
    const m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(part);
    if (m === null) throw new SelectorError(`invalid selector: '${selector}'; can't understand '${part}'`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    const get = fields[field];
    if (get === undefined) {
      throw new SelectorError(
        builtIn
          ? `field label not supported: ${field}`
          : `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`,
      );
    }
    tests.push(op === "!=" ? (o) => get(o) !== value : (o) => get(o) === value);
  }
  return (o) => tests.every((t) => t(o));
}
