/**
 * Numbers of the BGP wire format that callers (the FSM, the speaker, tests) also need: header sizes,
 * attribute type codes and flags, NOTIFICATION codes and subcodes, capability codes.
 *
 * @packageDocumentation
 */

/** Length of the fixed message header: 16-byte marker, 2-byte length, 1-byte type (RFC 4271 §4.1). */
export const HEADER_LENGTH = 19;
/** Largest message without RFC 8654 extended messages. */
export const MAX_MESSAGE_SIZE = 4096;
/** Largest message with RFC 8654 extended messages negotiated. */
export const MAX_EXTENDED_MESSAGE_SIZE = 65535;
/** AS_TRANS (RFC 6793): stands for a 4-octet ASN in 2-octet fields. */
export const AS_TRANS = 23456;
/** The BGP version this codec speaks. */
export const BGP_VERSION = 4;

/** Path attribute flag bits (RFC 4271 §4.3). */
export const AttrFlag = {
  Optional: 0x80,
  Transitive: 0x40,
  Partial: 0x20,
  ExtendedLength: 0x10,
} as const;
/** Union of {@link AttrFlag} values. */
export type AttrFlag = (typeof AttrFlag)[keyof typeof AttrFlag];

/** Path attribute type codes (IANA "BGP Path Attributes"). */
export const AttrType = {
  Origin: 1,
  AsPath: 2,
  NextHop: 3,
  MultiExitDisc: 4,
  LocalPref: 5,
  AtomicAggregate: 6,
  Aggregator: 7,
  Communities: 8,
  OriginatorId: 9,
  ClusterList: 10,
  MpReachNlri: 14,
  MpUnreachNlri: 15,
  ExtendedCommunities: 16,
  As4Path: 17,
  As4Aggregator: 18,
  LargeCommunities: 32,
} as const;
/** Union of {@link AttrType} values. */
export type AttrType = (typeof AttrType)[keyof typeof AttrType];

/** AS_PATH segment types (RFC 4271, RFC 5065). */
export const AsPathSegmentType = { AsSet: 1, AsSequence: 2, ConfedSequence: 3, ConfedSet: 4 } as const;
/** Union of {@link AsPathSegmentType} values. */
export type AsPathSegmentType = (typeof AsPathSegmentType)[keyof typeof AsPathSegmentType];

/** ORIGIN values (RFC 4271 §5.1.1). */
export const Origin = { Igp: 0, Egp: 1, Incomplete: 2 } as const;
/** Union of {@link Origin} values. */
export type Origin = (typeof Origin)[keyof typeof Origin];

/** Capability codes (IANA "Capability Codes"). */
export const CapabilityCode = {
  Multiprotocol: 1,
  RouteRefresh: 2,
  ExtendedNextHop: 5,
  ExtendedMessage: 6,
  GracefulRestart: 64,
  FourOctetAs: 65,
  AddPath: 69,
  EnhancedRouteRefresh: 70,
} as const;
/** Union of {@link CapabilityCode} values. */
export type CapabilityCode = (typeof CapabilityCode)[keyof typeof CapabilityCode];

/** NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313). */
export const NotificationCode = {
  MessageHeaderError: 1,
  OpenMessageError: 2,
  UpdateMessageError: 3,
  HoldTimerExpired: 4,
  FiniteStateMachineError: 5,
  Cease: 6,
  RouteRefreshMessageError: 7,
} as const;
/** Union of {@link NotificationCode} values. */
export type NotificationCode = (typeof NotificationCode)[keyof typeof NotificationCode];

/** Message Header Error subcodes (RFC 4271 §6.1). */
export const HeaderErrorSubcode = {
  ConnectionNotSynchronized: 1,
  BadMessageLength: 2,
  BadMessageType: 3,
} as const;
/** Union of {@link HeaderErrorSubcode} values. */
export type HeaderErrorSubcode = (typeof HeaderErrorSubcode)[keyof typeof HeaderErrorSubcode];

/** OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492). */
export const OpenErrorSubcode = {
  Unspecific: 0,
  UnsupportedVersionNumber: 1,
  BadPeerAs: 2,
  BadBgpIdentifier: 3,
  UnsupportedOptionalParameter: 4,
  UnacceptableHoldTime: 6,
  UnsupportedCapability: 7,
} as const;
/** Union of {@link OpenErrorSubcode} values. */
export type OpenErrorSubcode = (typeof OpenErrorSubcode)[keyof typeof OpenErrorSubcode];

/** UPDATE Message Error subcodes (RFC 4271 §6.3). */
export const UpdateErrorSubcode = {
  MalformedAttributeList: 1,
  UnrecognizedWellKnownAttribute: 2,
  MissingWellKnownAttribute: 3,
  AttributeFlagsError: 4,
  AttributeLengthError: 5,
  InvalidOriginAttribute: 6,
  InvalidNextHopAttribute: 8,
  OptionalAttributeError: 9,
  InvalidNetworkField: 10,
  MalformedAsPath: 11,
} as const;
/** Union of {@link UpdateErrorSubcode} values. */
export type UpdateErrorSubcode = (typeof UpdateErrorSubcode)[keyof typeof UpdateErrorSubcode];

/** Finite State Machine Error subcodes (RFC 6608). */
export const FsmErrorSubcode = {
  Unspecified: 0,
  UnexpectedMessageInOpenSent: 1,
  UnexpectedMessageInOpenConfirm: 2,
  UnexpectedMessageInEstablished: 3,
} as const;
/** Union of {@link FsmErrorSubcode} values. */
export type FsmErrorSubcode = (typeof FsmErrorSubcode)[keyof typeof FsmErrorSubcode];

/** Cease subcodes (RFC 4486, RFC 8538). */
export const CeaseSubcode = {
  MaximumPrefixesReached: 1,
  AdministrativeShutdown: 2,
  PeerDeconfigured: 3,
  AdministrativeReset: 4,
  ConnectionRejected: 5,
  OtherConfigurationChange: 6,
  ConnectionCollisionResolution: 7,
  OutOfResources: 8,
  HardReset: 9,
} as const;
/** Union of {@link CeaseSubcode} values. */
export type CeaseSubcode = (typeof CeaseSubcode)[keyof typeof CeaseSubcode];

/** ROUTE-REFRESH Message Error subcodes (RFC 7313). */
export const RouteRefreshErrorSubcode = { InvalidMessageLength: 1 } as const;
/** Union of {@link RouteRefreshErrorSubcode} values. */
export type RouteRefreshErrorSubcode =
  (typeof RouteRefreshErrorSubcode)[keyof typeof RouteRefreshErrorSubcode];
