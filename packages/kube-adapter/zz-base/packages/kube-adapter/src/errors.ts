/**
 * The one error type of `@margay/kube-adapter`. Guards check a process-wide brand plus the `code`, never
 * `instanceof` (a dual ESM/CJS install may load two copies of this module).
 *
 * @packageDocumentation
 */

/** Brand set on every {@link KubeAdapterError} (`Symbol.for`, shared across module copies). */
export const KUBE_ADAPTER_ERROR_BRAND: unique symbol = Symbol.for("@margay/kube-adapter/error") as never;

/** Error codes of `@margay/kube-adapter`. */
export const KubeAdapterErrorCode = {
  /** The API server answered with an unexpected HTTP status (details carry `status` and `reason`). */
  Http: "http",
  /** 410 Gone / "too old resource version" / expired continue token: the caller must relist. */
  Gone: "gone",
  /** The connection failed or dropped before a complete answer. */
  Network: "network",
  /** A response body or watch event was not the JSON the API promises. */
  Decode: "decode",
  /** The kubeconfig or in-cluster configuration is missing or unusable. */
  Config: "config",
  /** A Kubernetes object could not be converted into the model. */
  Convert: "convert",
  /** The informer or adapter was closed. */
  Closed: "closed",
  /** The caller's signal aborted. */
  Aborted: "aborted",
} as const;
/** Union of {@link KubeAdapterErrorCode} values. */
export type KubeAdapterErrorCode = (typeof KubeAdapterErrorCode)[keyof typeof KubeAdapterErrorCode];

/** Structured context of a {@link KubeAdapterError}; fields are set only when known. */
export interface KubeAdapterErrorDetails {
  /** HTTP status of the answer. */
  status?: number | undefined;
  /** Kubernetes `Status.reason` (e.g. `Expired`, `Gone`, `Unauthorized`). */
  reason?: string | undefined;
  /** Request path (without the server). */
  path?: string | undefined;
  /** Kubernetes kind concerned (e.g. `Pod`). */
  kind?: string | undefined;
  /** `namespace/name` or `name` of the object concerned. */
  object?: string | undefined;
  /** The resourceVersion the request asked for. */
  resourceVersion?: string | undefined;
}

/** Options of the {@link KubeAdapterError} constructor. */
export interface KubeAdapterErrorOptions {
  details?: KubeAdapterErrorDetails | undefined;
  cause?: unknown;
  /** Overrides the default retryability of the code. */
  retryable?: boolean | undefined;
}

const RETRYABLE: ReadonlySet<KubeAdapterErrorCode> = new Set<KubeAdapterErrorCode>([
  KubeAdapterErrorCode.Network,
  KubeAdapterErrorCode.Gone,
  KubeAdapterErrorCode.Decode,
]);

/** Every failure this package reports. `retryable` says whether the same call may succeed later. */
export class KubeAdapterError extends Error {
  /** Always true; see {@link isKubeAdapterError}. */
  readonly [KUBE_ADAPTER_ERROR_BRAND] = true as const;
  override readonly name = "KubeAdapterError";
  /** What failed. */
  readonly code: KubeAdapterErrorCode;
  /** Whether retrying (after a relist, for `gone`) can succeed. */
  readonly retryable: boolean;
  /** Where and what. */
  readonly details: KubeAdapterErrorDetails;

  constructor(code: KubeAdapterErrorCode, message: string, options: KubeAdapterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? RETRYABLE.has(code);
    this.details = options.details ?? {};
  }
}

/** True if `e` is a {@link KubeAdapterError} (from any copy of this package), optionally with one of `codes`. */
export function isKubeAdapterError(e: unknown, ...codes: KubeAdapterErrorCode[]): e is KubeAdapterError {
  if (typeof e !== "object" || e === null) return false;
  if ((e as { [KUBE_ADAPTER_ERROR_BRAND]?: unknown })[KUBE_ADAPTER_ERROR_BRAND] !== true) return false;
  return codes.length === 0 || codes.includes((e as { code: KubeAdapterErrorCode }).code);
}

/** An HTTP error for `status`; 429 and 5xx are retryable, 410 becomes `gone`. */
export function httpError(
  status: number,
  message: string,
  details: KubeAdapterErrorDetails,
): KubeAdapterError {
  if (status === 410) {
    return new KubeAdapterError(KubeAdapterErrorCode.Gone, message, { details: { ...details, status } });
  }
  return new KubeAdapterError(KubeAdapterErrorCode.Http, message, {
    details: { ...details, status },
    retryable: status === 429 || status >= 500,
  });
}
