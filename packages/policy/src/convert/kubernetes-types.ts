/**
 * Structural views of the Kubernetes objects the conversions read. Any object of this shape works: a
 * `@kubernetes/client-node` model, a parsed manifest, a watch event's object.
 *
 * @packageDocumentation
 */

/** `metav1.LabelSelectorRequirement`. */
export interface K8sLabelSelectorRequirement {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values?: readonly string[] | undefined;
}

/** `metav1.LabelSelector`. An empty selector selects everything. */
export interface K8sLabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>> | undefined;
  readonly matchExpressions?: readonly K8sLabelSelectorRequirement[] | undefined;
}

/** Object metadata. */
export interface K8sObjectMeta {
  readonly name: string;
  readonly namespace?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
}

/** `networking.k8s.io/v1` IPBlock. */
export interface K8sIpBlock {
  readonly cidr: string;
  readonly except?: readonly string[] | undefined;
}

/** `networking.k8s.io/v1` NetworkPolicyPeer. */
export interface K8sNetworkPolicyPeer {
  readonly podSelector?: K8sLabelSelector | null | undefined;
  readonly namespaceSelector?: K8sLabelSelector | null | undefined;
  readonly ipBlock?: K8sIpBlock | null | undefined;
}

/** `networking.k8s.io/v1` NetworkPolicyPort (protocol defaults to TCP). */
export interface K8sNetworkPolicyPort {
  readonly protocol?: "TCP" | "UDP" | "SCTP" | undefined;
  /** A number or the name of a container port. */
  readonly port?: number | string | undefined;
  /** Last port of a range starting at `port` (numeric `port` only). */
  readonly endPort?: number | undefined;
}

/** `networking.k8s.io/v1` NetworkPolicy. */
export interface K8sNetworkPolicy {
  readonly apiVersion?: string | undefined;
  readonly kind?: string | undefined;
  readonly metadata: K8sObjectMeta;
  readonly spec: {
    readonly podSelector?: K8sLabelSelector | null | undefined;
    readonly policyTypes?: readonly ("Ingress" | "Egress")[] | undefined;
    readonly ingress?:
      | readonly {
          readonly from?: readonly K8sNetworkPolicyPeer[] | undefined;
          readonly ports?: readonly K8sNetworkPolicyPort[] | undefined;
        }[]
      | undefined;
    readonly egress?:
      | readonly {
          readonly to?: readonly K8sNetworkPolicyPeer[] | undefined;
          readonly ports?: readonly K8sNetworkPolicyPort[] | undefined;
        }[]
      | undefined;
  };
}

/** `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicySubject (exactly one field set). */
export interface K8sAdminPolicySubject {
  readonly namespaces?: K8sLabelSelector | undefined;
  readonly pods?:
    | { readonly namespaceSelector: K8sLabelSelector; readonly podSelector: K8sLabelSelector }
    | undefined;
}

/** An ingress or egress peer of an (Baseline)AdminNetworkPolicy (exactly one field set). */
export interface K8sAdminPolicyPeer {
  readonly namespaces?: K8sLabelSelector | undefined;
  readonly pods?:
    | { readonly namespaceSelector: K8sLabelSelector; readonly podSelector: K8sLabelSelector }
    | undefined;
  /** Egress only: CIDRs. */
  readonly networks?: readonly string[] | undefined;
  /** Egress only: nodes (not supported by Margay yet). */
  readonly nodes?: K8sLabelSelector | undefined;
}

/** An (Baseline)AdminNetworkPolicy port (exactly one field set). */
export interface K8sAdminPolicyPort {
  readonly portNumber?:
    | { readonly protocol?: "TCP" | "UDP" | "SCTP" | undefined; readonly port: number }
    | undefined;
  readonly namedPort?: string | undefined;
  readonly portRange?:
    | { readonly protocol?: "TCP" | "UDP" | "SCTP" | undefined; readonly start: number; readonly end: number }
    | undefined;
}

/** An (Baseline)AdminNetworkPolicy rule. */
export interface K8sAdminPolicyRule {
  readonly name?: string | undefined;
  readonly action: "Allow" | "Deny" | "Pass";
  readonly from?: readonly K8sAdminPolicyPeer[] | undefined;
  readonly to?: readonly K8sAdminPolicyPeer[] | undefined;
  readonly ports?: readonly K8sAdminPolicyPort[] | undefined;
}

/** `policy.networking.k8s.io/v1alpha1` AdminNetworkPolicy. */
export interface K8sAdminNetworkPolicy {
  readonly apiVersion?: string | undefined;
  readonly kind?: string | undefined;
  readonly metadata: K8sObjectMeta;
  readonly spec: {
    /** 0–1000; lower is evaluated first. */
    readonly priority: number;
    readonly subject: K8sAdminPolicySubject;
    readonly ingress?: readonly K8sAdminPolicyRule[] | undefined;
    readonly egress?: readonly K8sAdminPolicyRule[] | undefined;
  };
}

/** `policy.networking.k8s.io/v1alpha1` BaselineAdminNetworkPolicy (a singleton named `default`). */
export interface K8sBaselineAdminNetworkPolicy {
  readonly apiVersion?: string | undefined;
  readonly kind?: string | undefined;
  readonly metadata: K8sObjectMeta;
  readonly spec: {
    readonly subject: K8sAdminPolicySubject;
    readonly ingress?: readonly K8sAdminPolicyRule[] | undefined;
    readonly egress?: readonly K8sAdminPolicyRule[] | undefined;
  };
}

/** A Kubernetes Namespace. */
export interface K8sNamespace {
  readonly metadata: K8sObjectMeta;
}

/** A Kubernetes ServiceAccount. */
export interface K8sServiceAccount {
  readonly metadata: K8sObjectMeta;
}
