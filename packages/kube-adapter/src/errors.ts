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
  /** 404: the object (or the route) does not exist. */
  NotFound: "not-found",
  /**
   * 409: `details.reason` says which: `AlreadyExists` (a create of an existing name) or `Conflict` (a
   * stale `resourceVersion` or precondition; re-read and retry, as client-go's `RetryOnConflict`).
   */
  Conflict: "conflict",
  /** 422 (or 400): the API server rejected the object; `details.causes` lists the fields. */
  Invalid: "invalid",
  /** 403: authenticated, but not allowed (RBAC). */
  Forbidden: "forbidden",
  /** 401: no or rejected credentials (an expired token, a wrong certificate). */
  Unauthorized: "unauthorized",
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
  /** HTTP method of the request, when not `GET`. */
  method?: string | undefined;
  /** `Status.details.causes` of the answer (422: which fields are invalid and why). */
  causes?: readonly KubeStatusCause[] | undefined;
}

/** One `metav1.StatusCause`. */
export interface KubeStatusCause {
  /** Machine-readable reason (`FieldValueRequired`, `FieldValueInvalid`). */
  reason?: string | undefined;
  /** Human-readable description. */
  message?: string | undefined;
  /** The field concerned (`metadata.name`, `spec.holderIdentity`). */
  field?: string | undefined;
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

const STATUS_CODES: Readonly<Record<number, KubeAdapterErrorCode>> = {
  400: KubeAdapterErrorCode.Invalid,
  401: KubeAdapterErrorCode.Unauthorized,
  403: KubeAdapterErrorCode.Forbidden,
  404: KubeAdapterErrorCode.NotFound,
  409: KubeAdapterErrorCode.Conflict,
  410: KubeAdapterErrorCode.Gone,
  422: KubeAdapterErrorCode.Invalid,
};

/**
 * An HTTP error for `status`: 400 and 422 `invalid`, 401 `unauthorized`, 403 `forbidden`, 404 `not-found`, 409 `conflict`
 * (retryable when `details.reason` is `Conflict`: re-read and retry), 410 `gone`, 422 `invalid`; any other
 * status is `http`, retryable for 429 and 5xx.
 */
export function httpError(
  status: number,
  message: string,
  details: KubeAdapterErrorDetails,
): KubeAdapterError {
  const code = STATUS_CODES[status];
  if (code !== undefined) {
    return new KubeAdapterError(code, message, {
      details: { ...details, status },
      retryable:
        code === KubeAdapterErrorCode.Gone ||
        (code === KubeAdapterErrorCode.Conflict && details.reason === "Conflict"),
    });
  }
  return new KubeAdapterError(KubeAdapterErrorCode.Http, message, {
    details: { ...details, status },
    retryable: status === 429 || status >= 500,
  });
}
