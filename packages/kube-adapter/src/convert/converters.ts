/**
 * The converter of each Kubernetes resource type: what model objects one Kubernetes object becomes.
 * Policies and profiles use `@margay/policy`'s conversions, so the adapter and the policy engine agree
 * on names, tiers and selectors.
 *
 * @packageDocumentation
 */

import type { Resource } from "@margay/api";
import {
  convertAdminNetworkPolicy,
  convertBaselineAdminNetworkPolicy,
  convertNamespace,
  convertNetworkPolicy,
  convertServiceAccount,
  type K8sAdminNetworkPolicy,
  type K8sBaselineAdminNetworkPolicy,
  type K8sNetworkPolicy,
} from "@margay/policy";
import type { KubeNode, KubeObject, KubePod } from "../kube-types.js";
import { type KubeResourceName, KubeResources, type KubeResourceType } from "../resources.js";
import { convertNode } from "./node.js";
import { convertPod } from "./pod.js";

/** Turns objects of one Kubernetes resource type into model resources. */
export interface ResourceConverter<T extends KubeObject = KubeObject> {
  /** The Kubernetes resource type converted. */
  readonly resource: KubeResourceType;
  /** Model kinds this converter can produce (the adapter reconciles exactly these kinds). */
  readonly modelKinds: readonly string[];
  /**
   * The model resources `object` becomes (none for, e.g., a host-network pod). Pure and deterministic.
   * Throws on input it cannot convert at all; the adapter then keeps nothing for the object and counts
   * it. Parts it can leave out safely (a malformed policy rule, which then fails closed, as in Calico)
   * are reported through `context.onIssue` instead.
   */
  convert(object: T, context?: ConvertContext): Resource[];
}

/** The resource types with a model converter (all but `services`, `endpointslices` and `leases`). */
export type ConvertibleResourceName = Exclude<KubeResourceName, "services" | "endpointslices" | "leases">;

/** Callbacks a converter reports through. */
export interface ConvertContext {
  /** Told of each part of an object left out or narrowed (e.g. a policy rule with a malformed CIDR). */
  readonly onIssue?: ((error: unknown) => void) | undefined;
  /** Workload interface prefix pods' endpoints are named with. Default `mgy` (see `convertPod`). */
  readonly interfacePrefix?: string | undefined;
}

const policyOptions = (context: ConvertContext | undefined) =>
  context?.onIssue === undefined ? {} : { onInvalidRule: context.onIssue };

/**
 * The converters of the resource types the adapter turns into model resources (every type of
 * `ALL_KUBE_RESOURCES`; `services`, `endpointslices` and `leases` have none).
 */
export const defaultConverters: Readonly<Record<ConvertibleResourceName, ResourceConverter>> = Object.freeze({
  pods: {
    resource: KubeResources.pods,
    modelKinds: ["WorkloadEndpoint"],
    convert: (o: KubeObject, context?: ConvertContext) => {
      const wep = convertPod(o as KubePod, { interfacePrefix: context?.interfacePrefix });
      return wep === undefined ? [] : [wep];
    },
  },
  namespaces: {
    resource: KubeResources.namespaces,
    modelKinds: ["Profile"],
    convert: (o: KubeObject) => [convertNamespace(o)],
  },
  serviceaccounts: {
    resource: KubeResources.serviceaccounts,
    modelKinds: ["Profile"],
    convert: (o: KubeObject) => [convertServiceAccount(o)],
  },
  nodes: {
    resource: KubeResources.nodes,
    modelKinds: ["Node"],
    convert: (o: KubeObject) => [convertNode(o as KubeNode)],
  },
  networkpolicies: {
    resource: KubeResources.networkpolicies,
    modelKinds: ["NetworkPolicy"],
    convert: (o: KubeObject, c?: ConvertContext) => [
      convertNetworkPolicy(o as unknown as K8sNetworkPolicy, policyOptions(c)),
    ],
  },
  adminnetworkpolicies: {
    resource: KubeResources.adminnetworkpolicies,
    modelKinds: ["GlobalNetworkPolicy"],
    convert: (o: KubeObject, c?: ConvertContext) => [
      convertAdminNetworkPolicy(o as unknown as K8sAdminNetworkPolicy, policyOptions(c)),
    ],
  },
  baselineadminnetworkpolicies: {
    resource: KubeResources.baselineadminnetworkpolicies,
    modelKinds: ["GlobalNetworkPolicy"],
    convert: (o: KubeObject, c?: ConvertContext) => [
      convertBaselineAdminNetworkPolicy(o as unknown as K8sBaselineAdminNetworkPolicy, policyOptions(c)),
    ],
  },
});
