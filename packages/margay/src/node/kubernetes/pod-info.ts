/**
 * Kubernetes mode of the workload API (calico-node + Calico's CNI plugin in etcd mode): at a pod's ADD,
 * the agent reads the pod and its namespace from the API server and writes the WorkloadEndpoint with the
 * pod's labels, service account, profiles and named ports (exactly what kube-adapter's `convertPod` makes
 * of the pod, so the controllers' pod controller later finds nothing to change), and takes the requested
 * pools and addresses from our annotations (`margay.io/ipv4pools`, `margay.io/ipv6pools`,
 * `margay.io/ipAddrs`; a pod's pool annotations win over its namespace's, which win over the CNI
 * configuration's). Policy is then right from the first packet.
 *
 * Fail closed: when the pod cannot be read (not found, API server down, credentials refused) the add
 * fails with a retryable coded error (CNI code 11, try again later); an endpoint is never written
 * without the pod's labels.
 *
 * @packageDocumentation
 */
import { isIPv4, isIPv6 } from "node:net";
import type { Logger, WorkloadEndpoint } from "@margay/api";
import {
  type KubeObject,
  type KubePod,
  POD_IPADDRS_ANNOTATION,
  POD_IPV4POOLS_ANNOTATION,
  POD_IPV6POOLS_ANNOTATION,
  convertPod,
  isKubeAdapterError,
  podSkipReason,
} from "@margay/kube-adapter";
import { WorkloadApiError, WorkloadErrorCode } from "../workload/errors.js";
import type { WorkloadAddEnrichment } from "../workload/service.js";
import type { ValidAddRequest } from "../workload/validate.js";

/** Reads one object; `undefined` when the API server says 404: kube-adapter's `KubeClient` (`createKubeClient`). */
export interface KubeObjectGetter {
  get(
    resource: "pods" | "namespaces",
    namespace: string | undefined,
    name: string,
    options?: { signal?: AbortSignal | undefined },
  ): Promise<KubeObject | undefined>;
}

/** What the API server says of a pod that its endpoint carries. */
export interface PodNetworkInfo {
  /** The endpoint's labels: the pod's, plus the namespace, orchestrator and service-account labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** `kns.<namespace>` and, with a service account, `ksa.<namespace>.<serviceaccount>`. */
  readonly profiles: readonly string[];
  readonly serviceAccountName: string | undefined;
  /** Named container ports (policy's named-port rules). */
  readonly ports: NonNullable<WorkloadEndpoint["spec"]["ports"]>;
  /** Pools asked for by annotation (per family the pod's over the namespace's; IPv4 then IPv6); empty: none asked. */
  readonly pools: readonly string[];
  /** Addresses asked for by `margay.io/ipAddrs`; empty: none. */
  readonly ips: readonly string[];
}

function annotationError(
  where: string,
  annotation: string,
  reason: string,
  value: string | undefined,
): WorkloadApiError {
  return new WorkloadApiError(
    WorkloadErrorCode.InvalidField,
    `invalid annotation ${annotation} of ${where}: ${reason}`,
    { details: { field: "annotations", annotation, object: where, reason, value } },
  );
}

function jsonList(
  obj: KubeObject | undefined,
  where: string,
  annotation: string,
  check: (s: string) => boolean,
  what: string,
): string[] {
  const raw = obj?.metadata.annotations?.[annotation];
  if (raw === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw annotationError(where, annotation, "must be a JSON list of strings", raw);
  }
  if (!Array.isArray(parsed) || parsed.some((e) => typeof e !== "string" || !check(e)))
    throw annotationError(where, annotation, `must be a JSON list of ${what}`, raw);
  return parsed as string[];
}

const POOL_RE = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,252}$/;

/**
 * The endpoint content of `pod` (in `namespace`, when read) as `convertPod` makes it, and the pools and
 * addresses its annotations ask for. Pure.
 *
 * @throws {@link WorkloadApiError} `invalid-field` for a host-network pod or a malformed annotation.
 */
export function podNetworkInfo(
  pod: KubePod,
  namespace: KubeObject | undefined,
  nodeName: string,
): PodNetworkInfo {
  const where = `pod ${pod.metadata.namespace ?? "default"}/${pod.metadata.name}`;
  if (podSkipReason(pod) === "host-network") {
    throw new WorkloadApiError(
      WorkloadErrorCode.InvalidField,
      `${where} uses the host network: it has no workload endpoint`,
      { details: { field: "pod", reason: "host-network pod" } },
    );
  }
  // The labels, profiles and ports do not depend on the phase or on the node the pod is bound to yet;
  // the add itself is the proof that the pod runs here.
  const wep = convertPod({
    ...pod,
    spec: { ...pod.spec, nodeName: pod.spec?.nodeName || nodeName },
    status: { ...pod.status, phase: "Pending" },
  })!;
  const v4 = (o: KubeObject | undefined, w: string) =>
    jsonList(o, w, POD_IPV4POOLS_ANNOTATION, (s) => POOL_RE.test(s), "pool names or CIDRs");
  const v6 = (o: KubeObject | undefined, w: string) =>
    jsonList(o, w, POD_IPV6POOLS_ANNOTATION, (s) => POOL_RE.test(s), "pool names or CIDRs");
  const podV4 = v4(pod, where);
  const podV6 = v6(pod, where);
  const ips = jsonList(pod, where, POD_IPADDRS_ANNOTATION, (s) => isIPv4(s) || isIPv6(s), "IP addresses");
  if (ips.length > 0 && podV4.length + podV6.length > 0) {
    throw annotationError(
      where,
      POD_IPADDRS_ANNOTATION,
      "cannot be used with the pool annotations",
      undefined,
    );
  }
  const fams = ips.map((ip) => (isIPv6(ip) ? 6 : 4));
  if (new Set(fams).size !== fams.length)
    throw annotationError(
      where,
      POD_IPADDRS_ANNOTATION,
      "at most one address per family",
      JSON.stringify(ips),
    );
  // As Calico's CNI plugin: per family, the pod's annotation overrides the namespace's (a pod naming only
  // IPv4 pools keeps its namespace's IPv6 pools).
  const has = (o: KubeObject, a: string) => o.metadata.annotations?.[a] !== undefined;
  const nsWhere = `namespace ${namespace?.metadata.name}`;
  const pools =
    ips.length > 0
      ? []
      : [
          ...(has(pod, POD_IPV4POOLS_ANNOTATION) ? podV4 : v4(namespace, nsWhere)),
          ...(has(pod, POD_IPV6POOLS_ANNOTATION) ? podV6 : v6(namespace, nsWhere)),
        ];
  return {
    labels: wep.metadata.labels ?? {},
    profiles: wep.spec.profiles ?? [],
    serviceAccountName: wep.spec.serviceAccountName,
    ports: wep.spec.ports ?? [],
    pools,
    ips,
  };
}

/**
 * Folds a pod's info into an add request: annotation pools replace the configuration's, annotation
 * addresses are the addresses asked for (an add that asks for other addresses itself is refused).
 */
export function applyPodNetworkInfo(req: ValidAddRequest, info: PodNetworkInfo): ValidAddRequest {
  let ips = req.ips;
  if (info.ips.length > 0) {
    if (req.ips.length > 0 && [...req.ips].sort().join() !== [...info.ips].sort().join()) {
      throw new WorkloadApiError(
        WorkloadErrorCode.InvalidField,
        `invalid ips: the request asks for ${req.ips.join(",")} and annotation ${POD_IPADDRS_ANNOTATION} for ${info.ips.join(",")}`,
        {
          details: {
            field: "ips",
            reason: "conflicts with the pod's annotation",
            annotation: POD_IPADDRS_ANNOTATION,
          },
        },
      );
    }
    ips = info.ips;
  }
  return {
    ...req,
    labels: { ...req.labels, ...info.labels },
    ips,
    pools: info.pools.length > 0 ? info.pools : req.pools,
  };
}

/** Options of {@link createPodInfoSource}. */
export interface PodInfoSourceOptions {
  /** Reads pods and namespaces (kube-adapter's `createKubeClient(transport)`). */
  readonly getter: KubeObjectGetter;
  /** This node's name (a pod read before it is bound). */
  readonly nodeName: string;
  /** Time allowed for both reads, ms. Default 10 000. */
  readonly timeoutMs?: number | undefined;
  readonly logger?: Logger | undefined;
}

/** The add hook of the workload API in Kubernetes mode. */
export interface PodInfoSource {
  /** Reads the pod (and its namespace) of `req`; `undefined` for an add without a pod. */
  lookup(namespace: string, pod: string, signal: AbortSignal): Promise<PodNetworkInfo>;
  /** The workload service's `enrichAdd` hook. */
  enrichAdd(req: ValidAddRequest, signal: AbortSignal): Promise<WorkloadAddEnrichment | undefined>;
}

function unavailable(e: unknown, what: string): WorkloadApiError {
  const status =
    (e as { status?: unknown; details?: { status?: unknown } }).status ??
    (e as { details?: { status?: unknown } }).details?.status;
  return new WorkloadApiError(
    WorkloadErrorCode.KubernetesUnavailable,
    `cannot read ${what} from the Kubernetes API server: ${e instanceof Error ? e.message : String(e)}`,
    {
      details: {
        object: what,
        ...(typeof status === "number" ? { status } : {}),
        ...(isKubeAdapterError(e) ? { kubeCode: e.code } : {}),
      },
      cause: e,
    },
  );
}

/** Creates the Kubernetes-mode add hook. */
export function createPodInfoSource(options: PodInfoSourceOptions): PodInfoSource {
  const { getter, nodeName } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;

  async function read(
    resource: "pods" | "namespaces",
    namespace: string | undefined,
    name: string,
    what: string,
    signal: AbortSignal,
  ): Promise<KubeObject | undefined> {
    try {
      return await getter.get(resource, namespace, name, { signal });
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      throw unavailable(e, what);
    }
  }

  async function lookup(namespace: string, pod: string, outer: AbortSignal): Promise<PodNetworkInfo> {
    const signal = AbortSignal.any([outer, AbortSignal.timeout(timeoutMs)]);
    const what = `pod ${namespace}/${pod}`;
    const [p, ns] = await Promise.all([
      read("pods", namespace, pod, what, signal),
      read("namespaces", undefined, namespace, `namespace ${namespace}`, signal),
    ]);
    if (p === undefined) {
      throw new WorkloadApiError(
        WorkloadErrorCode.PodNotFound,
        `${what} not found in the Kubernetes API: no endpoint without its labels`,
        { details: { namespace, pod } },
      );
    }
    const info = podNetworkInfo(p as KubePod, ns, nodeName);
    options.logger?.debug(
      { namespace, pod, labels: Object.keys(info.labels).length, pools: info.pools, ips: info.ips },
      "pod read from the Kubernetes API",
    );
    return info;
  }

  return {
    lookup,
    async enrichAdd(req, signal) {
      if (req.pod === undefined) return undefined;
      const info = await lookup(req.namespace, req.pod, signal);
      return {
        request: applyPodNetworkInfo(req, info),
        endpoint: {
          profiles: info.profiles,
          serviceAccountName: info.serviceAccountName,
          ports: info.ports,
        },
      };
    },
  };
}
