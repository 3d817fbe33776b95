/**
 * The workload API's errors: one code table shared by the agent (HTTP status of each code) and the
 * client (typed errors from a reply, CNI codes for the plugin). No imports: the CNI plugin bundles it.
 *
 * @packageDocumentation
 */
import type { WorkloadErrorBody, WorkloadStatusReply } from "./protocol.js";

/** Every error code of the workload API. */
export const WorkloadErrorCode = {
  /** The body is not JSON (or not an object). */
  InvalidJson: "invalid-json",
  /** The body exceeds the size limit. */
  BodyTooLarge: "body-too-large",
  /** Content type is not `application/json`. */
  UnsupportedMediaType: "unsupported-media-type",
  /** A field the protocol does not know (`details.field`). */
  UnknownField: "unknown-field",
  /** A required field is absent (`details.field`). */
  MissingField: "missing-field",
  /** A field has a bad value (`details.field`, `details.reason`). */
  InvalidField: "invalid-field",
  /** The container's network namespace does not exist. */
  NetnsNotFound: "netns-not-found",
  /** No such path (e.g. an unsupported protocol version). */
  UnknownEndpoint: "unknown-endpoint",
  /** The path exists for another method. */
  MethodNotAllowed: "method-not-allowed",
  /** The dataplane is not in sync yet: nothing could be programmed. Retryable. */
  NotReady: "not-ready",
  /** The agent is stopping. Retryable. */
  ShuttingDown: "shutting-down",
  /** The request's deadline passed (everything it did was rolled back). Retryable. */
  DeadlineExceeded: "deadline-exceeded",
  /** The pools have no free address for this node (IPAM `pool-exhausted`). */
  PoolExhausted: "pool-exhausted",
  /** This node is at its block limit (IPAM `host-block-limit`). */
  HostBlockLimit: "host-block-limit",
  /** No enabled pool selects this node for the family or the pools asked for (IPAM `no-pools`). */
  NoPools: "no-pools",
  /**
   * A requested address cannot be assigned: held by another attachment, outside every pool, in a
   * disabled pool or in a block affine to another node (`details.reason` is the IPAM code).
   */
  AddressUnavailable: "address-unavailable",
  /** Any other IPAM failure (`details.ipamCode`). */
  IpamFailed: "ipam-failed",
  /** The datastore cannot be reached or is too busy. Retryable. */
  DatastoreUnavailable: "datastore-unavailable",
  /** Creating the veth, addresses or routes failed (`details.reason`). */
  PlumbingFailed: "plumbing-failed",
  /** Writing the WorkloadEndpoint failed. */
  EndpointWriteFailed: "endpoint-write-failed",
  /**
   * Kubernetes mode: the pod of an add is not in the API server (deleted, or not visible yet). Retryable:
   * no endpoint is written without the pod's labels.
   */
  PodNotFound: "pod-not-found",
  /** Kubernetes mode: the API server cannot be reached or refuses the agent's credentials. Retryable. */
  KubernetesUnavailable: "kubernetes-unavailable",
  /** check: the attachment is not as its add made it (`details.problems`). */
  CheckFailed: "check-failed",
  /** Client side: the agent's socket is missing or refuses connections. Retryable. */
  AgentUnavailable: "agent-unavailable",
  /** Client side: the agent's reply is not a reply of this protocol. */
  ProtocolError: "protocol-error",
  /** Agent start: the socket path is served by another live agent, or is not a socket (`details.reason`). */
  SocketUnavailable: "socket-unavailable",
  /** A bug: the agent failed in a way it has no code for. */
  Internal: "internal",
} as const;
/** Union of {@link WorkloadErrorCode} values. */
export type WorkloadErrorCode = (typeof WorkloadErrorCode)[keyof typeof WorkloadErrorCode];

interface CodeInfo {
  readonly status: number;
  readonly retryable: boolean;
}

const C = WorkloadErrorCode;
/** HTTP status and retryability of each code: the one table the agent and the docs follow. */
export const WORKLOAD_ERROR_TABLE: Readonly<Record<WorkloadErrorCode, CodeInfo>> = Object.freeze({
  [C.InvalidJson]: { status: 400, retryable: false },
  [C.BodyTooLarge]: { status: 413, retryable: false },
  [C.UnsupportedMediaType]: { status: 415, retryable: false },
  [C.UnknownField]: { status: 400, retryable: false },
  [C.MissingField]: { status: 400, retryable: false },
  [C.InvalidField]: { status: 400, retryable: false },
  [C.NetnsNotFound]: { status: 400, retryable: false },
  [C.UnknownEndpoint]: { status: 404, retryable: false },
  [C.MethodNotAllowed]: { status: 405, retryable: false },
  [C.NotReady]: { status: 503, retryable: true },
  [C.ShuttingDown]: { status: 503, retryable: true },
  [C.DeadlineExceeded]: { status: 504, retryable: true },
  [C.PoolExhausted]: { status: 409, retryable: false },
  [C.HostBlockLimit]: { status: 409, retryable: false },
  [C.NoPools]: { status: 409, retryable: false },
  [C.AddressUnavailable]: { status: 409, retryable: false },
  [C.IpamFailed]: { status: 500, retryable: false },
  [C.DatastoreUnavailable]: { status: 503, retryable: true },
  [C.PlumbingFailed]: { status: 500, retryable: false },
  [C.EndpointWriteFailed]: { status: 500, retryable: false },
  [C.PodNotFound]: { status: 503, retryable: true },
  [C.KubernetesUnavailable]: { status: 503, retryable: true },
  [C.CheckFailed]: { status: 409, retryable: false },
  [C.AgentUnavailable]: { status: 503, retryable: true },
  [C.ProtocolError]: { status: 502, retryable: false },
  [C.SocketUnavailable]: { status: 500, retryable: false },
  [C.Internal]: { status: 500, retryable: false },
});

const BRAND: unique symbol = Symbol.for("@margay/margay/workload-api-error") as never;

/** Options of {@link WorkloadApiError}. */
export interface WorkloadApiErrorOptions {
  readonly details?: Readonly<Record<string, unknown>> | undefined;
  /** Default: the code's (see {@link WORKLOAD_ERROR_TABLE}). */
  readonly retryable?: boolean | undefined;
  readonly cause?: unknown;
}

/** The one error of the workload API, on both sides of the socket. Test with {@link isWorkloadApiError}. */
export class WorkloadApiError extends Error {
  readonly code: WorkloadErrorCode;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;
  /** @internal brand checked by {@link isWorkloadApiError}. */
  readonly [BRAND] = true;

  constructor(code: WorkloadErrorCode, message: string, options: WorkloadApiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "WorkloadApiError";
    this.code = code;
    this.retryable = options.retryable ?? WORKLOAD_ERROR_TABLE[code]?.retryable ?? false;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  /** HTTP status of the reply carrying this error. */
  get status(): number {
    return WORKLOAD_ERROR_TABLE[this.code]?.status ?? 500;
  }

  /** The JSON error body. */
  toBody(): WorkloadErrorBody {
    return { code: this.code, message: this.message, retryable: this.retryable, details: this.details };
  }
}

/** True when `e` is a {@link WorkloadApiError} (by brand, so two bundled copies agree), optionally of `codes`. */
export function isWorkloadApiError(e: unknown, ...codes: WorkloadErrorCode[]): e is WorkloadApiError {
  if (typeof e !== "object" || e === null || (e as Record<symbol, unknown>)[BRAND] !== true) return false;
  return codes.length === 0 || codes.includes((e as WorkloadApiError).code);
}

/** True when `code` is one of {@link WorkloadErrorCode}. */
export function isWorkloadErrorCode(code: unknown): code is WorkloadErrorCode {
  return typeof code === "string" && Object.hasOwn(WORKLOAD_ERROR_TABLE, code);
}

/**
 * CNI error codes the plugin reports. 11 and 50 are the specification's; 110-140 are margay-ipam's own
 * (`MargayIpamErrorCode`, same numbers on purpose: a runtime operator sees one code for one cause
 * whichever plugin runs), 150+ are the workload API's.
 */
export const WorkloadCniCode = {
  /** Request fields that come from the runtime's environment (`CNI_CONTAINERID`, `CNI_IFNAME`, ...). */
  InvalidEnvironmentVariables: 4,
  /** Request fields that come from the network configuration (`mtu`, `ips`, `pools`, ...). */
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  /** STATUS: the agent cannot serve ADD now. */
  PluginNotAvailable: 50,
  PoolExhausted: 110,
  AllocationMissing: 120,
  IpamFailure: 130,
  RequestedAddressUnavailable: 140,
  PlumbingFailed: 150,
  EndpointFailed: 160,
  CheckFailed: 170,
  /** The plugin and the agent disagree on the protocol (upgrade one of them). */
  AgentProtocol: 180,
  Internal: 999,
} as const;

/** The CNI error object (`code`, `msg`, `details`) a plugin prints. */
export interface WorkloadCniError {
  readonly code: number;
  readonly msg: string;
  readonly details?: string | undefined;
}

// Fields the runtime passes through CNI_* environment variables; the others come from the config.
const ENV_FIELDS = new Set(["containerId", "ifName", "netns", "namespace", "pod", "workload", "args"]);

function topField(details: Readonly<Record<string, unknown>>): string | undefined {
  const f = details.field;
  return typeof f === "string" ? f.split(/[.[]/, 1)[0] : undefined;
}

/**
 * Maps an error of a workload API call (any error: a {@link WorkloadApiError} or something unexpected) to
 * the CNI error the plugin prints. `verb` matters for one case: an agent that cannot serve is code 50 for
 * STATUS and 11 (try again later) for every other verb.
 */
export function toCniError(
  e: unknown,
  verb: "add" | "del" | "check" | "status" | "gc" = "add",
): WorkloadCniError {
  if (!isWorkloadApiError(e)) {
    return {
      code: WorkloadCniCode.Internal,
      msg: "workload API call failed",
      details: e instanceof Error ? e.message : String(e),
    };
  }
  const details = JSON.stringify({ code: e.code, message: e.message, ...e.details });
  const out = (code: number, msg: string): WorkloadCniError => ({ code, msg, details });
  switch (e.code) {
    case C.MissingField:
    case C.InvalidField:
      return out(
        ENV_FIELDS.has(topField(e.details) ?? "")
          ? WorkloadCniCode.InvalidEnvironmentVariables
          : WorkloadCniCode.InvalidNetworkConfig,
        e.message,
      );
    case C.NetnsNotFound:
      return out(WorkloadCniCode.InvalidEnvironmentVariables, e.message);
    case C.PoolExhausted:
    case C.HostBlockLimit:
      return out(WorkloadCniCode.PoolExhausted, e.message);
    case C.AddressUnavailable:
      return out(WorkloadCniCode.RequestedAddressUnavailable, e.message);
    case C.NoPools:
    case C.IpamFailed:
      return out(WorkloadCniCode.IpamFailure, e.message);
    case C.PlumbingFailed:
      return out(WorkloadCniCode.PlumbingFailed, e.message);
    case C.EndpointWriteFailed:
      return out(WorkloadCniCode.EndpointFailed, e.message);
    case C.CheckFailed:
      return out(WorkloadCniCode.CheckFailed, e.message);
    case C.InvalidJson:
    case C.BodyTooLarge:
    case C.UnsupportedMediaType:
    case C.UnknownField:
    case C.UnknownEndpoint:
    case C.MethodNotAllowed:
    case C.ProtocolError:
      return out(WorkloadCniCode.AgentProtocol, `agent protocol mismatch: ${e.message}`);
    default:
      if (e.retryable) {
        return out(
          verb === "status" ? WorkloadCniCode.PluginNotAvailable : WorkloadCniCode.TryAgainLater,
          e.message,
        );
      }
      return out(WorkloadCniCode.Internal, e.message);
  }
}

/**
 * The CNI STATUS answer of a status reply: `undefined` when the agent serves adds, else code 50 (plugin
 * not available) with the agent's reason. (A status call that fails is `toCniError(e, "status")`.)
 */
export function cniStatusError(reply: WorkloadStatusReply): WorkloadCniError | undefined {
  if (reply.ready) return undefined;
  return {
    code: WorkloadCniCode.PluginNotAvailable,
    msg: "margay-node agent not ready",
    details: reply.reason ?? "not ready",
  };
}
