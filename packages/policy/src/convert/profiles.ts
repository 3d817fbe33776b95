import type { Profile } from "@margay/api";
import {
  LABEL_K8S_NAMESPACE_NAME,
  LABEL_NAME,
  MARGAY_API_VERSION,
  NAMESPACE_LABEL_PREFIX,
  NAMESPACE_PROFILE_PREFIX,
  SERVICE_ACCOUNT_LABEL_PREFIX,
  SERVICE_ACCOUNT_PROFILE_PREFIX,
} from "../model/constants.js";
import type { K8sNamespace, K8sServiceAccount } from "./kubernetes-types.js";

function prefixed(labels: Readonly<Record<string, string>>, prefix: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) out[prefix + k] = labels[k]!;
  return out;
}

/** The profile name of a namespace: `kns.<namespace>`. */
export function namespaceProfileName(namespace: string): string {
  return NAMESPACE_PROFILE_PREFIX + namespace;
}

/** The profile name of a service account: `ksa.<namespace>.<name>`. */
export function serviceAccountProfileName(namespace: string, name: string): string {
  return `${SERVICE_ACCOUNT_PROFILE_PREFIX}${namespace}.${name}`;
}

/**
 * Converts a Namespace into its profile, as Calico does: `kns.<name>`, allowing all ingress and egress
 * (so pods no policy selects are open, as in Kubernetes), and passing the namespace's labels to its
 * endpoints with the `pcns.` prefix plus `pcns.projectcalico.org/name`. The API server's
 * `kubernetes.io/metadata.name` label is added when missing, so namespace selectors on it work.
 */
export function convertNamespace(ns: K8sNamespace): Profile {
  const name = ns.metadata.name;
  const labels = { [LABEL_K8S_NAMESPACE_NAME]: name, ...(ns.metadata.labels ?? {}) };
  return {
    apiVersion: MARGAY_API_VERSION,
    kind: "Profile",
    metadata: { name: namespaceProfileName(name) },
    spec: {
      ingress: [{ action: "Allow" }],
      egress: [{ action: "Allow" }],
      labelsToApply: {
        ...prefixed(labels, NAMESPACE_LABEL_PREFIX),
        [NAMESPACE_LABEL_PREFIX + LABEL_NAME]: name,
      },
    },
  };
}

/**
 * Converts a ServiceAccount into its profile, as Calico does: `ksa.<namespace>.<name>` with no rules,
 * passing its labels with the `pcsa.` prefix plus `pcsa.projectcalico.org/name`.
 */
export function convertServiceAccount(sa: K8sServiceAccount): Profile {
  const ns = sa.metadata.namespace ?? "default";
  return {
    apiVersion: MARGAY_API_VERSION,
    kind: "Profile",
    metadata: { name: serviceAccountProfileName(ns, sa.metadata.name) },
    spec: {
      labelsToApply: {
        ...prefixed(sa.metadata.labels ?? {}, SERVICE_ACCOUNT_LABEL_PREFIX),
        [SERVICE_ACCOUNT_LABEL_PREFIX + LABEL_NAME]: sa.metadata.name,
      },
    },
  };
}
