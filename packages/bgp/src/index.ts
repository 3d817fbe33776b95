/**
 * `@margay/bgp`: a BGP-4 speaker for Node. {@link createSpeaker} runs sessions over `node:net` with the
 * RFC 4271 state machine (`@margay/bgp/fsm`), the RIBs and decision process (`@margay/bgp/rib`) and the
 * sans-IO codec (`@margay/bgp/wire`), and reports best-path changes for a dataplane to install.
 *
 * @packageDocumentation
 */
export type { BgpConfigErrorCode, BgpConfigErrorDetails } from "./errors/config-error.js";
export { BgpConfigError, isBgpConfigError } from "./errors/config-error.js";
export type { BgpError, BgpErrorCode } from "./errors/bgp-error.js";
export { isBgpError } from "./errors/bgp-error.js";
export type { BgpEncodeErrorCode, BgpWireErrorCode } from "./wire/errors.js";
export { BgpEncodeError, BgpWireError, isBgpEncodeError, isBgpWireError } from "./wire/errors.js";
export { SessionState, TransitionReason } from "./fsm/types.js";
export type { Policy, PolicyActions, PolicyMatch, PolicyStatement, PrefixListEntry } from "./rib/policy.js";
export type {
  BestPathEvent,
  BestRoute,
  Family,
  LogAttributes,
  LogFn,
  Logger,
  MaxPrefixEvent,
  MaxPrefixOptions,
  MessageCounters,
  OriginateOptions,
  PeerErrorInfo,
  PeerOptions,
  PeerStateEvent,
  PeerStatus,
  Speaker,
  SpeakerEvent,
  SpeakerOptions,
} from "./speaker/index.js";
export { createSpeaker, SPEAKER_DEFAULTS, silentLogger } from "./speaker/index.js";
