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
   * Throws on input it cannot convert; the adapter then keeps nothing for the object and counts it.
   */
  convert(object: T): Resource[];
}

/** The converters of every resource type the adapter knows. */
export const defaultConverters: Readonly<Record<KubeResourceName, ResourceConverter>> = Object.freeze({
  pods: {
    resource: KubeResources.pods,
    modelKinds: ["WorkloadEndpoint"],
    convert: (o: KubeObject) => {
      const wep = convertPod(o as KubePod);
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
    convert: (o: KubeObject) => [convertNetworkPolicy(o as unknown as K8sNetworkPolicy)],
  },
  adminnetworkpolicies: {
    resource: KubeResources.adminnetworkpolicies,
    modelKinds: ["GlobalNetworkPolicy"],
    convert: (o: KubeObject) => [convertAdminNetworkPolicy(o as unknown as K8sAdminNetworkPolicy)],
  },
  baselineadminnetworkpolicies: {
    resource: KubeResources.baselineadminnetworkpolicies,
    modelKinds: ["GlobalNetworkPolicy"],
    convert: (o: KubeObject) => [convertBaselineAdminNetworkPolicy(o as unknown as K8sBaselineAdminNetworkPolicy)],
  },
});
