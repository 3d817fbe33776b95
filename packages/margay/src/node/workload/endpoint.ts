/**
 * Identity of an attachment: its IPAM handle, its WorkloadEndpoint (name as Calico builds it, labels
 * and profiles as the policy package expects), and the identity its host veth is named from.
 *
 * @packageDocumentation
 */
import { isIPv6 } from "node:net";
import { API_VERSION, type WorkloadEndpoint, type WorkloadInterfaceIdentity } from "@margay/api";
import { LABEL_NAMESPACE, LABEL_ORCHESTRATOR, namespaceProfileName } from "@margay/policy";
import { WorkloadApiError, WorkloadErrorCode } from "./errors.js";

/**
 * Prefix of every IPAM handle the workload API owns. Calico's CNI plugin uses `<network>.<containerID>`;
 * ours is `margay:<containerId>:<ifName>` because the API keys an attachment by (container, interface),
 * as CNI GC's valid attachments do, and because `:` occurs in no CNI network name nor container id nor
 * interface name: node-scoped gc over this prefix can never touch a handle of margay-ipam (or any other
 * plugin's `<network>.<id>` handle) and a handle splits back into its attachment unambiguously.
 */
export const WORKLOAD_HANDLE_PREFIX = "margay:";

/** Annotation recording the container-side interface of an endpoint the workload API wrote. */
export const IFNAME_ANNOTATION = "margay.io/cni-ifname";

/**
 * Annotation recording the MTU a pod's veth was made with: the agent's MTU follows the pools, so a pod
 * created before an encapsulation change keeps its own and CHECK compares against this one.
 */
export const MTU_ANNOTATION = "margay.io/mtu";

/** The MTU recorded on an endpoint at its creation, if any (see {@link MTU_ANNOTATION}). */
export function recordedMtu(w: WorkloadEndpoint | undefined): number | undefined {
  const v = w?.metadata.annotations?.[MTU_ANNOTATION];
  if (v === undefined || !/^[0-9]{1,5}$/.test(v)) return undefined;
  return Number(v);
}

/** Orchestrator of endpoints with a pod (`k8s`), and of the others (`cni`, as Calico's plugin). */
export const ORCHESTRATOR = Object.freeze({ kubernetes: "k8s", cni: "cni" } as const);

/** The IPAM handle of an attachment. */
export function workloadHandleId(containerId: string, ifName: string): string {
  return `${WORKLOAD_HANDLE_PREFIX}${containerId}:${ifName}`;
}

const escapePart = (s: string) => s.replaceAll("-", "--");

/**
 * The WorkloadEndpoint name Calico gives an endpoint: `<node>-<orchestrator>-<workload>-<endpoint>`,
 * every `-` inside a part doubled (the same rule as kube-adapter's `workloadEndpointName`, which this
 * package does not depend on; a test holds the two equal).
 */
export function workloadEndpointName(
  node: string,
  orchestrator: string,
  workload: string,
  endpoint: string,
): string {
  return [node, orchestrator, workload, endpoint].map(escapePart).join("-");
}

/** The identity fields of a request (after validation). */
export interface AttachmentIdentityInput {
  readonly containerId: string;
  readonly ifName: string;
  readonly namespace: string;
  readonly pod: string | undefined;
  readonly workload: string | undefined;
  readonly endpoint: string;
}

/** Everything derived from an attachment's identity. */
export interface AttachmentIdentity {
  readonly handleId: string;
  readonly namespace: string;
  /** WorkloadEndpoint name. */
  readonly name: string;
  /** Pipeline key `<namespace>/<name>`. */
  readonly key: string;
  readonly orchestrator: string;
  /** Pod name (k8s) or workload name (cni). */
  readonly workload: string;
  /** What the host veth is named from (`workloadInterfaceName`). */
  readonly iface: WorkloadInterfaceIdentity;
}

/** Longest object name the datastore accepts. */
const MAX_NAME = 253;

/** Derives an attachment's identity on `node`; `invalid-field` when the endpoint name would be too long. */
export function attachmentIdentity(node: string, req: AttachmentIdentityInput): AttachmentIdentity {
  const orchestrator = req.pod !== undefined ? ORCHESTRATOR.kubernetes : ORCHESTRATOR.cni;
  const workload = req.pod ?? req.workload ?? req.containerId;
  const name = workloadEndpointName(node, orchestrator, workload, req.endpoint);
  if (name.length > MAX_NAME) {
    const field = req.pod !== undefined ? "pod" : req.workload !== undefined ? "workload" : "containerId";
    throw new WorkloadApiError(
      WorkloadErrorCode.InvalidField,
      `invalid ${field}: the endpoint name would exceed ${MAX_NAME} characters`,
      { details: { field, reason: "endpoint name too long", length: name.length } },
    );
  }
  return {
    handleId: workloadHandleId(req.containerId, req.ifName),
    namespace: req.namespace,
    name,
    key: `${req.namespace}/${name}`,
    orchestrator,
    workload,
    iface: { namespace: req.namespace, workload, endpoint: req.endpoint },
  };
}

/** The veth identity of a stored endpoint (to remove the veth of an endpoint found by search). */
export function ifaceOfEndpoint(wep: WorkloadEndpoint): WorkloadInterfaceIdentity | undefined {
  const workload = wep.spec.pod ?? wep.spec.workload;
  const namespace = wep.metadata.namespace;
  if (workload === undefined || workload === "" || namespace === undefined) return undefined;
  return { namespace, workload, endpoint: wep.spec.endpoint };
}

/** `/32` or `/128` network of an address. */
export function hostNetwork(ip: string): string {
  return `${ip}/${isIPv6(ip) ? 128 : 32}`;
}

/** What the WorkloadEndpoint of an attachment says. */
export interface EndpointContent {
  readonly node: string;
  readonly containerId: string;
  readonly ifName: string;
  readonly interfaceName: string;
  readonly ips: readonly string[];
  readonly mac: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Default: `kns.<namespace>`. */
  readonly profiles?: readonly string[] | undefined;
  readonly serviceAccountName?: string | undefined;
  /** Named ports (Kubernetes mode: the pod's). */
  readonly ports?: NonNullable<WorkloadEndpoint["spec"]["ports"]> | undefined;
  /** MTU the veth was made with (recorded as {@link MTU_ANNOTATION}). */
  readonly mtu?: number | undefined;
}

/** Builds the WorkloadEndpoint of an attachment (without resourceVersion). */
export function buildWorkloadEndpoint(id: AttachmentIdentity, c: EndpointContent): WorkloadEndpoint {
  const labels: Record<string, string> = {
    ...c.labels,
    [LABEL_NAMESPACE]: id.namespace,
    [LABEL_ORCHESTRATOR]: id.orchestrator,
  };
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: {
      name: id.name,
      namespace: id.namespace,
      labels,
      annotations: {
        [IFNAME_ANNOTATION]: c.ifName,
        ...(c.mtu === undefined ? {} : { [MTU_ANNOTATION]: String(c.mtu) }),
      },
    },
    spec: {
      orchestrator: id.orchestrator,
      node: c.node,
      ...(id.orchestrator === ORCHESTRATOR.kubernetes ? { pod: id.workload } : { workload: id.workload }),
      endpoint: id.iface.endpoint ?? c.ifName,
      containerID: c.containerId,
      ipNetworks: c.ips.map(hostNetwork),
      ...(c.serviceAccountName === undefined ? {} : { serviceAccountName: c.serviceAccountName }),
      profiles: c.profiles === undefined ? [namespaceProfileName(id.namespace)] : [...c.profiles],
      interfaceName: c.interfaceName,
      ...(c.mac === "" ? {} : { mac: c.mac }),
      ...(c.ports === undefined || c.ports.length === 0 ? {} : { ports: c.ports.map((p) => ({ ...p })) }),
    },
  };
}

/** True when two endpoints say the same thing (ignoring datastore-owned metadata). */
export function sameEndpoint(a: WorkloadEndpoint, b: WorkloadEndpoint): boolean {
  const canon = (w: WorkloadEndpoint) =>
    JSON.stringify([
      sorted(w.metadata.labels ?? {}),
      sorted(w.metadata.annotations ?? {}),
      sorted(w.spec as unknown as Record<string, unknown>),
    ]);
  return canon(a) === canon(b);
}

function sorted(o: Readonly<Record<string, unknown>>): [string, unknown][] {
  return Object.keys(o)
    .sort()
    .map((k) => [k, o[k]]);
}
