/**
 * The one error type of the node agent's configuration: every bad flag, environment variable,
 * `AgentConfiguration` field or autodetection outcome becomes an {@link AgentConfigError} naming the
 * setting, where its value came from and the value itself, so an operator can fix it without reading code.
 *
 * @packageDocumentation
 */

/** Brand of {@link AgentConfigError} (`Symbol.for`, shared across module copies). */
const BRAND: unique symbol = Symbol.for("@margay/margay/agent-config-error") as never;

/** What went wrong. */
export const AgentConfigErrorCode = {
  /** A value cannot be parsed or is out of range. */
  InvalidValue: "invalid-value",
  /** A flag that the schema does not declare, or a flag without its value. */
  UnknownFlag: "unknown-flag",
  /** Two settings that cannot go together (e.g. IPIP and VXLAN on one pool). */
  Conflict: "conflicting-settings",
  /** An `AgentConfiguration` resource is invalid. */
  InvalidResource: "invalid-resource",
  /** Address autodetection found nothing usable. */
  NoAddress: "no-address",
  /** Address autodetection found several candidates it cannot choose between. */
  AmbiguousAddress: "ambiguous-address",
  /** Autodetection could not read the host's interfaces (`ip` failed or printed something unexpected). */
  HostQuery: "host-query-failed",
} as const;
/** Union of {@link AgentConfigErrorCode} values. */
export type AgentConfigErrorCode = (typeof AgentConfigErrorCode)[keyof typeof AgentConfigErrorCode];

/** Where a setting's value came from. */
export type SettingSource = "flag" | "env" | "node-resource" | "global-resource" | "default";

/** Context of an {@link AgentConfigError}. */
export interface AgentConfigErrorDetails {
  /** The setting at fault (a key of `AGENT_CONFIG_SCHEMA`), or the resource path (`node.a.spec.vxlanPort`). */
  readonly field: string;
  /** Where the value came from, with the name used there: `--vxlan-port`, `env:MARGAY_VXLAN_PORT`. */
  readonly origin?: string | undefined;
  /** The offending value (never secret material: the schema holds no inline secrets). */
  readonly value?: unknown;
  /** Further context (the candidates of an ambiguous autodetection, ...). */
  readonly [key: string]: unknown;
}

/** A bad node-agent configuration. Never retryable except `host-query-failed`. */
export class AgentConfigError extends Error {
  /** Always true; see {@link isAgentConfigError}. */
  readonly [BRAND] = true as const;
  /** Always `"AgentConfigError"`. */
  override readonly name = "AgentConfigError";
  /** What went wrong. */
  readonly code: AgentConfigErrorCode;
  /** True only when retrying could help (the host's interfaces may change). */
  readonly retryable: boolean;
  /** Which setting, from where, with which value. */
  readonly details: AgentConfigErrorDetails;

  /**
   * @param code - what went wrong.
   * @param message - starts with the setting (or its origin).
   * @param details - field, origin, value.
   * @param cause - the underlying failure.
   */
  constructor(
    code: AgentConfigErrorCode,
    message: string,
    details: AgentConfigErrorDetails,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
    this.details = details;
    this.retryable = code === AgentConfigErrorCode.HostQuery || code === AgentConfigErrorCode.NoAddress;
  }
}

/** True if `e` is an {@link AgentConfigError} (brand check, not `instanceof`). */
export function isAgentConfigError(e: unknown): e is AgentConfigError {
  return typeof e === "object" && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
}
