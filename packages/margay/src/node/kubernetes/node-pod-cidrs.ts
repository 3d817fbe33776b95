/**
 * Kubernetes mode: this node's pod CIDRs from its own Kubernetes Node's `spec.podCIDRs` (as Calico's
 * host-local `usePodCidr` reads them), for the workload API's status, which the CNI plugin's host-local
 * delegation reads. Without Kubernetes nothing but the `margay.io/pod-cidrs` annotation of our Node says
 * them; in Kubernetes mode nothing writes that annotation, so the Node's spec is the source.
 *
 * `spec.podCIDRs` may not change once set (the API server refuses it), so the first non-empty answer is
 * kept; until then every status asks again (the node IPAM controller assigns them shortly after the
 * kubelet registers the Node).
 *
 * @packageDocumentation
 */
import { type Logger, silentLogger, tryParseCidr } from "@margay/api";
import type { KubeNode, KubeObject } from "@margay/kube-adapter";

/** Reads one Node; `undefined` on 404: kube-adapter's `KubeClient` (`createKubeClient`). */
export interface KubeNodeGetter {
  get(
    resource: "nodes",
    namespace: undefined,
    name: string,
    options?: { signal?: AbortSignal | undefined },
  ): Promise<KubeObject | undefined>;
}

/** Options of {@link createNodePodCidrsSource}. */
export interface NodePodCidrsSourceOptions {
  readonly getter: KubeNodeGetter;
  /** This node's name, which is its Kubernetes Node's (`NODENAME`). */
  readonly nodeName: string;
  /** Default silent. */
  readonly logger?: Logger | undefined;
}

/** This node's pod CIDRs as its Kubernetes Node states them. */
export interface NodePodCidrsSource {
  /**
   * `spec.podCIDRs` (else `spec.podCIDR`), canonical; `undefined` when the Node is missing, has none yet
   * or cannot be read (logged): the caller then falls back to its other source. Never throws.
   */
  podCidrs(signal?: AbortSignal): Promise<string[] | undefined>;
}

/** The CIDRs a Node's spec assigns it, canonical, malformed entries dropped. */
export function nodeSpecPodCidrs(node: KubeNode): string[] {
  const spec = node.spec;
  const raw = spec?.podCIDRs?.length ? spec.podCIDRs : spec?.podCIDR ? [spec.podCIDR] : [];
  return raw.flatMap((c) => {
    const cidr = tryParseCidr(c.trim());
    return cidr === undefined ? [] : [cidr.text];
  });
}

/** Reads this node's pod CIDRs from its Kubernetes Node (see the module comment). */
export function createNodePodCidrsSource(options: NodePodCidrsSourceOptions): NodePodCidrsSource {
  const log = (options.logger ?? silentLogger).child({ kubeNode: options.nodeName });
  let known: string[] | undefined;
  return {
    async podCidrs(signal) {
      if (known !== undefined) return [...known];
      try {
        const node = (await options.getter.get("nodes", undefined, options.nodeName, { signal })) as
          | KubeNode
          | undefined;
        const cidrs = node === undefined ? [] : nodeSpecPodCidrs(node);
        if (cidrs.length === 0) return undefined;
        known = cidrs;
        log.info({ podCidrs: cidrs }, "pod CIDRs from the Kubernetes Node");
        return [...cidrs];
      } catch (err) {
        if (signal?.aborted) return undefined;
        log.warn({ err }, "cannot read the Kubernetes Node's pod CIDRs");
        return undefined;
      }
    },
  };
}
