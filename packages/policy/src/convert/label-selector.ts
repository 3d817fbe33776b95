import { LABEL_ORCHESTRATOR, ORCHESTRATOR_K8S } from "../model/constants.js";
import type { K8sLabelSelector } from "./kubernetes-types.js";

const q = (s: string): string => `'${s}'`;

/**
 * Converts a Kubernetes label selector into Calico selector text, as Calico does:
 * - `pod`: prefixed with `projectcalico.org/orchestrator == 'k8s'`; an absent selector selects every pod;
 * - `namespace`: an absent selector gives `""` (meaning "the policy's own namespace"), an empty one
 *   `all()` (every namespace).
 * `matchLabels` become `==` terms (sorted by key), `In`/`NotIn` set terms, `Exists`/`DoesNotExist`
 * `has()` / `!has()`.
 */
export function labelSelectorToCalico(
  sel: K8sLabelSelector | null | undefined,
  kind: "pod" | "namespace",
): string {
  const terms: string[] = [];
  if (kind === "pod") terms.push(`${LABEL_ORCHESTRATOR} == ${q(ORCHESTRATOR_K8S)}`);
  if (sel === undefined || sel === null) return terms.join(" && ");
  const labels = sel.matchLabels ?? {};
  const exprs = sel.matchExpressions ?? [];
  if (kind === "namespace" && Object.keys(labels).length === 0 && exprs.length === 0) return "all()";
  for (const k of Object.keys(labels).sort()) terms.push(`${k} == ${q(labels[k]!)}`);
  for (const e of exprs) {
    const values = (e.values ?? []).map(q).join(", ");
    switch (e.operator) {
      case "In":
        terms.push(`${e.key} in { ${values} }`);
        break;
      case "NotIn":
        terms.push(`${e.key} not in { ${values} }`);
        break;
      case "Exists":
        terms.push(`has(${e.key})`);
        break;
      case "DoesNotExist":
        terms.push(`! has(${e.key})`);
        break;
    }
  }
  return terms.length === 0 ? "all()" : terms.join(" && ");
}
