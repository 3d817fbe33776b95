/**
 * `@margay/bgp/wire`: a sans-IO BGP-4 codec. It turns bytes into typed messages and back, splits a TCP
 * stream into messages, and says for every malformed input which NOTIFICATION to send and which RFC 7606
 * action applies. It opens no socket and keeps no session: negotiated capabilities come in as a
 * {@link CodecContext}.
 *
 * @packageDocumentation
 */
export {
  Afi,
  ErrorAction,
  MessageType,
  Safi,
} from "./types.js";
export type {
  AsPathSegment,
  BgpMessage,
  Capability,
  CodecContext,
  KeepaliveMessage,
  NotificationMessage,
  OpenMessage,
  PathAttributes,
  Prefix,
  RouteRefreshMessage,
  UnknownAttribute,
  UpdateMessage,
} from "./types.js";
export {
  AS_TRANS,
  AsPathSegmentType,
  AttrFlag,
  AttrType,
  BGP_VERSION,
  CapabilityCode,
  CeaseSubcode,
  FsmErrorSubcode,
  HEADER_LENGTH,
  HeaderErrorSubcode,
  MAX_EXTENDED_MESSAGE_SIZE,
  MAX_MESSAGE_SIZE,
  NotificationCode,
  OpenErrorSubcode,
  Origin,
  RouteRefreshErrorSubcode,
  UpdateErrorSubcode,
} from "./constants.js";
export { BgpEncodeError, BgpWireError, isBgpEncodeError, isBgpWireError, worstAction } from "./errors.js";
export type {
  BgpEncodeErrorCode,
  BgpWireErrorCode,
  BgpWireErrorDetails,
  NotificationInfo,
} from "./errors.js";
export { createCodecContext, DEFAULT_CODEC_CONTEXT, familyKey, negotiateCodecContext } from "./context.js";
export { createFramer } from "./framer.js";
export type { Framer, FramerOptions } from "./framer.js";
export { checkHeader, messageType } from "./header.js";
export { decodeMessage, encodeMessage, KEEPALIVE_BYTES } from "./message.js";
export { decodeUpdate, encodeUpdate, encodeUpdates, endOfRib, endOfRibFamily, isEndOfRib } from "./update.js";
export type { DecodeUpdateOptions, UpdateBatch, UpdateDecodeResult, UpdateSections } from "./update.js";
export { asPathLength, encodeAttributes, mergeAs4Path } from "./attributes.js";
export type { EncodeAttributesOptions, MpNlriSection } from "./attributes.js";
export { ATTRIBUTE_RULES } from "./attribute-rules.js";
export type { AttributeRule } from "./attribute-rules.js";
export {
  afiBits,
  decodePrefixes,
  forEachIPv4Prefix,
  forEachPrefix,
  formatPrefix,
  ipv4Prefix,
  parsePrefix,
  prefixFromBytes,
  scanPrefixes,
} from "./prefix.js";
export type { IPv4PrefixCallback, PrefixCallback } from "./prefix.js";
export { ipv4ToString, ipv6ToString, parseIpv4, parseIpv6, u32ToIpv4 } from "./ip.js";
export { openPeerAs, validateOpen, validateUpdate } from "./validate.js";
export type { OpenValidationOptions, UpdateValidationOptions, UpdateValidationResult } from "./validate.js";
