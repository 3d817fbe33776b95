/**
 * The workload API's wire vocabulary (version `v1`): request and reply bodies, paths and limits. Types
 * and constants only, so the CNI plugin's bundle (through `client.ts`) pays nothing for it.
 *
 * Versioning rule: everything lives under `/v1/`; within v1 changes are additive only (a new optional
 * request field, a new reply field, a new error code). A client must ignore reply fields it does not
 * know; the agent rejects request fields it does not know (`unknown-field`), so an old agent never
 * silently drops something a newer plugin asked for. Anything else is `/v2/`.
 *
 * @packageDocumentation
 */

/** The protocol version every path starts with. */
export const WORKLOAD_API_VERSION = "v1";

/** Request paths of {@link WORKLOAD_API_VERSION}. */
export const WORKLOAD_API_PATHS = Object.freeze({
  add: "/v1/workloads/add",
  del: "/v1/workloads/del",
  check: "/v1/workloads/check",
  status: "/v1/status",
  gc: "/v1/gc",
} as const);

/** A verb of the API. */
export type WorkloadVerb = keyof typeof WORKLOAD_API_PATHS;

/** Largest request body of add, del and check, bytes. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Largest gc request body (it lists every attachment of the node), bytes. */
export const MAX_GC_REQUEST_BYTES = 4 * 1024 * 1024;

/**
 * A client may send `margay-timeout-ms: <n>` to shorten the agent's own deadline for its request (it
 * never lengthens it): the agent gives up (and rolls back) no later than the client stops waiting.
 */
export const TIMEOUT_HEADER = "margay-timeout-ms";

/**
 * Annotation of a Node listing its pod CIDRs, comma-separated (kube-adapter's `POD_CIDRS_ANNOTATION`,
 * written from Kubernetes' `spec.podCIDRs`; set by hand without Kubernetes). Status reports it.
 */
export const NODE_POD_CIDRS_ANNOTATION = "margay.io/pod-cidrs";

/** The agent's deadline per verb, ms (a request's own `margay-timeout-ms` can only shorten it). */
export const DEFAULT_DEADLINES_MS: Readonly<Record<WorkloadVerb, number>> = Object.freeze({
  add: 60_000,
  del: 20_000,
  check: 20_000,
  status: 5_000,
  gc: 120_000,
});

/** Body of `POST /v1/workloads/add` and `POST /v1/workloads/check`. */
export interface WorkloadAddRequest {
  /** The runtime's container id (`CNI_CONTAINERID`). Required. */
  readonly containerId: string;
  /** Interface name inside the container (`CNI_IFNAME`). Required. */
  readonly ifName: string;
  /** Path of the container's network namespace (`CNI_NETNS`). Required. */
  readonly netns: string;
  /** Namespace of the WorkloadEndpoint (the pod's namespace). Default `default`. */
  readonly namespace?: string | undefined;
  /** Kubernetes pod name: the endpoint is `<node>-k8s-<pod>-<endpoint>`, orchestrator `k8s`. */
  readonly pod?: string | undefined;
  /**
   * Workload name when there is no pod (orchestrator `cni`): the endpoint is
   * `<node>-cni-<workload>-<endpoint>`. Default: the container id. Not allowed together with `pod`.
   */
  readonly workload?: string | undefined;
  /** The endpoint's name within the workload. Default: `ifName`. */
  readonly endpoint?: string | undefined;
  /** Extra labels of the endpoint (the namespace and orchestrator labels are added by the agent). */
  readonly labels?: Readonly<Record<string, string>> | undefined;
  /** Specific addresses to assign (CNI `IP=` / the `ips` capability), one per family at most. */
  readonly ips?: readonly string[] | undefined;
  /** Pools (names or CIDRs) to allocate from instead of the node's automatic pools. */
  readonly pools?: readonly string[] | undefined;
  /** MAC of the container-side interface. Default: the kernel's random one. */
  readonly mac?: string | undefined;
  /** Veth MTU. Default: the agent's (underlay MTU minus encapsulation overhead). */
  readonly mtu?: number | undefined;
  /** Further `CNI_ARGS` (e.g. `K8S_POD_UID`), kept as IPAM allocation attributes `arg.<key>`. */
  readonly args?: Readonly<Record<string, string>> | undefined;
  /**
   * Addresses allocated outside the agent (the plugin's `host-local` IPAM delegate), one per family at
   * most: plumbed and written into the endpoint as given; the agent's IPAM neither allocates nor releases
   * them. Not together with `ips` or `pools`.
   */
  readonly externalIps?: readonly string[] | undefined;
}

/** Body of `POST /v1/workloads/check`: the same attachment as its add. */
export type WorkloadCheckRequest = WorkloadAddRequest;

/**
 * Body of `POST /v1/workloads/del`: the attachment (`containerId`, `ifName`) and, optionally, the
 * identity fields given at add (they find the endpoint without a search).
 */
export interface WorkloadDelRequest {
  readonly containerId: string;
  readonly ifName: string;
  /** May be absent or empty: the runtime may have destroyed the namespace already. */
  readonly netns?: string | undefined;
  readonly namespace?: string | undefined;
  readonly pod?: string | undefined;
  readonly workload?: string | undefined;
  readonly endpoint?: string | undefined;
  readonly args?: Readonly<Record<string, string>> | undefined;
}

/** One attachment the runtime still holds (CNI GC's `cni.dev/valid-attachments`). */
export interface WorkloadAttachment {
  readonly containerId: string;
  readonly ifName: string;
}

/** Body of `POST /v1/gc`. */
export interface WorkloadGcRequest {
  /** Every attachment that is still valid on this node; everything else of this node is released. */
  readonly validAttachments: readonly WorkloadAttachment[];
}

/** An interface in an add reply (CNI result shape). */
export interface WorkloadInterface {
  readonly name: string;
  readonly mac: string;
  /** Set for the container-side interface: its namespace path. */
  readonly sandbox?: string | undefined;
}

/** An address in an add reply (CNI result shape). */
export interface WorkloadIp {
  /** Address with prefix length (`/32`, `/128`). */
  readonly address: string;
  /** The link-local gateway the plumber routes through (`169.254.1.1`, or the host veth's fe80 address). */
  readonly gateway: string;
  /** Index into `interfaces` (always the container side). */
  readonly interface: number;
}

/** A route in an add reply (CNI result shape). */
export interface WorkloadRoute {
  readonly dst: string;
  readonly gw: string;
}

/** Reply of add (200). */
export interface WorkloadAddReply {
  /** `[host side, container side]`. */
  readonly interfaces: readonly WorkloadInterface[];
  readonly ips: readonly WorkloadIp[];
  readonly routes: readonly WorkloadRoute[];
  /** MAC of the container-side interface. */
  readonly mac: string;
  /** Host-side veth name. */
  readonly hostInterface: string;
  /** The WorkloadEndpoint written: namespace, name and the revision the dataplane programmed. */
  readonly endpoint: { readonly namespace: string; readonly name: string; readonly revision: string };
}

/** Reply of del (200). */
export interface WorkloadDelReply {
  /** Addresses released by this call (empty when there was nothing to release). */
  readonly released: readonly string[];
  /** Whether this call deleted the WorkloadEndpoint. */
  readonly endpointDeleted: boolean;
  /** Whether this call removed the veth. */
  readonly interfaceRemoved: boolean;
}

/** Reply of check (200 when all is as asked; a mismatch is the error `check-failed`). */
export interface WorkloadCheckReply {
  readonly ok: true;
  readonly ips: readonly string[];
  readonly hostInterface: string;
}

/** Reply of status (200 whether ready or not). */
export interface WorkloadStatusReply {
  readonly apiVersion: typeof WORKLOAD_API_VERSION;
  readonly node: string;
  /** True when an add would be served now (the dataplane is in sync and the API is not closing). */
  readonly ready: boolean;
  /** Why not ready, when not. */
  readonly reason?: string | undefined;
  /** The veth MTU the agent uses. */
  readonly mtu: number;
  /** Requests in progress. */
  readonly inFlight: number;
  /**
   * This node's pod CIDRs (the Node's `margay.io/pod-cidrs` annotation, from Kubernetes' `podCIDRs`), what
   * the plugin's `host-local` delegate substitutes for `usePodCidr` / `usePodCidrIPv6`. Empty when none.
   */
  readonly podCidrs?: readonly string[] | undefined;
  /** The gc grace period, ms: gc leaves attachments younger than this alone (so does the plugin's delegate). */
  readonly gcGracePeriodMs?: number | undefined;
}

/** Reply of gc (200). */
export interface WorkloadGcReply {
  /** Addresses released, by IPAM handle. */
  readonly released: readonly { readonly handleId: string; readonly ips: readonly string[] }[];
  /** Handles left for a later gc (inside the grace period, or changed meanwhile). */
  readonly deferred: readonly string[];
  /** WorkloadEndpoints (`<namespace>/<name>`) deleted, with their veths. */
  readonly endpointsDeleted: readonly string[];
}

/** The body of every error reply (4xx, 5xx). */
export interface WorkloadErrorBody {
  /** Kebab-case code, one of `WorkloadErrorCode`. */
  readonly code: string;
  readonly message: string;
  /** Whether the same request may succeed later. */
  readonly retryable: boolean;
  /** Structured facts: `field` (a JSON path such as `labels.app`) for validation errors, pool, ip, ... */
  readonly details: Readonly<Record<string, unknown>>;
}
