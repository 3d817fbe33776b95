/**
 * Typed BGP-4 messages and path attributes: the values the sans-IO codec turns bytes into and back.
 * Names follow RFC 4271 and the RFCs of each extension. This module is the contract between the wire
 * codec, the RIB and the speaker.
 *
 * @packageDocumentation
 */

/** Address family identifiers (IANA). */
export const Afi = { IPv4: 1, IPv6: 2 } as const;
/** Union of {@link Afi} values. */
export type Afi = (typeof Afi)[keyof typeof Afi];

/** Subsequent address family identifiers (IANA). Only unicast is routed; others are carried as data. */
export const Safi = { Unicast: 1 } as const;
/** Union of {@link Safi} values. */
export type Safi = (typeof Safi)[keyof typeof Safi];

/** The BGP message type codes (RFC 4271 §4.1, RFC 2918). */
export const MessageType = { Open: 1, Update: 2, Notification: 3, Keepalive: 4, RouteRefresh: 5 } as const;
/** Union of {@link MessageType} values. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/**
 * A prefix in NLRI. `addr` holds the address bytes (4 for IPv4, 16 for IPv6; bits past `len` zero).
 * `pathId` is set when ADD-PATH (RFC 7911) is negotiated for the family in that direction.
 */
export interface Prefix {
  afi: Afi;
  len: number;
  addr: Uint8Array;
  pathId?: number;
}

/** Capability as advertised in OPEN (RFC 5492). Unknown capabilities are kept as raw bytes. */
export type Capability =
  | { code: 1; kind: "multiprotocol"; afi: number; safi: number }
  | { code: 2; kind: "route-refresh" }
  | { code: 70; kind: "enhanced-route-refresh" }
  | {
      code: 64;
      kind: "graceful-restart";
      restartState: boolean;
      notification: boolean;
      restartTime: number;
      families: { afi: number; safi: number; forwardingPreserved: boolean }[];
    }
  | { code: 65; kind: "four-octet-as"; asn: number }
  | { code: 6; kind: "extended-message" }
  | { code: 69; kind: "add-path"; families: { afi: number; safi: number; sendReceive: 1 | 2 | 3 }[] }
  | { code: 5; kind: "extended-next-hop"; families: { afi: number; safi: number; nextHopAfi: number }[] }
  | { code: number; kind: "unknown"; data: Uint8Array };

/** OPEN (RFC 4271 §4.2). `myAs` is the 2-octet field (AS_TRANS 23456 when the real ASN needs 4 octets). */
export interface OpenMessage {
  type: typeof MessageType.Open;
  version: number;
  myAs: number;
  holdTime: number;
  /** BGP Identifier as dotted quad. */
  bgpId: string;
  capabilities: Capability[];
}

/** AS_PATH segment (RFC 4271 §4.3): type 1 = AS_SET, 2 = AS_SEQUENCE (3/4 = confed, RFC 5065). */
export interface AsPathSegment {
  type: 1 | 2 | 3 | 4;
  asns: number[];
}

/** An attribute the codec does not interpret, carried through (with the partial bit when transitive). */
export interface UnknownAttribute {
  flags: number;
  typeCode: number;
  data: Uint8Array;
}

/**
 * Decoded path attributes of one UPDATE. AS_PATH is always presented with 4-octet ASNs: the codec merges
 * AS4_PATH/AS4_AGGREGATOR (RFC 6793 §4.2.3) when the session is 2-octet, and splits them when encoding.
 */
export interface PathAttributes {
  origin?: 0 | 1 | 2;
  asPath?: AsPathSegment[];
  /** IPv4 NEXT_HOP attribute (type 3) as dotted quad. */
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  /** RFC 1997 communities as 32-bit unsigned values. */
  communities?: number[];
  /** RFC 4360 extended communities, 8 bytes each. */
  extendedCommunities?: Uint8Array[];
  /** RFC 8092 large communities as [global admin, local 1, local 2]. */
  largeCommunities?: [number, number, number][];
  originatorId?: string;
  clusterList?: string[];
  /** MP_REACH_NLRI (RFC 4760): next hop(s) as text (IPv6: global, then optional link-local). */
  mpReach?: { afi: number; safi: number; nextHops: string[]; nlri: Prefix[] };
  /** MP_UNREACH_NLRI (RFC 4760). */
  mpUnreach?: { afi: number; safi: number; withdrawn: Prefix[] };
  unknown?: UnknownAttribute[];
}

/** UPDATE (RFC 4271 §4.3). IPv4 unicast NLRI/withdrawals travel in the classic fields, others in MP_*. */
export interface UpdateMessage {
  type: typeof MessageType.Update;
  withdrawn: Prefix[];
  attributes: PathAttributes;
  nlri: Prefix[];
}

/** NOTIFICATION (RFC 4271 §4.5). */
export interface NotificationMessage {
  type: typeof MessageType.Notification;
  code: number;
  subcode: number;
  data: Uint8Array;
}

/** KEEPALIVE (RFC 4271 §4.4). */
export interface KeepaliveMessage {
  type: typeof MessageType.Keepalive;
}

/** ROUTE-REFRESH (RFC 2918; subtype per RFC 7313: 0 normal, 1 BoRR, 2 EoRR). */
export interface RouteRefreshMessage {
  type: typeof MessageType.RouteRefresh;
  afi: number;
  subtype: number;
  safi: number;
}

/** Any BGP message. */
export type BgpMessage =
  | OpenMessage
  | UpdateMessage
  | NotificationMessage
  | KeepaliveMessage
  | RouteRefreshMessage;

/**
 * What the session negotiated and the codec must know: the same bytes decode differently with 4-octet
 * AS, ADD-PATH, extended messages or extended next hop.
 */
export interface CodecContext {
  /** Both sides advertised the 4-octet AS capability. */
  asn4: boolean;
  /** Maximum message size: 4096, or 65535 with RFC 8654 extended messages. */
  maxMessageSize: number;
  /** Families ("afi/safi", e.g. "1/1") for which we RECEIVE path identifiers (ADD-PATH). */
  addPathReceive: ReadonlySet<string>;
  /** Families for which we SEND path identifiers (ADD-PATH). */
  addPathSend: ReadonlySet<string>;
  /** Families ("afi/safi") whose next hop may be of another AFI (RFC 8950, e.g. IPv4 NLRI with IPv6 NH). */
  extendedNextHop: ReadonlySet<string>;
}

/**
 * RFC 7606 error handling actions, from most to least severe. Decode errors carry one; the FSM decides
 * what to send.
 */
export const ErrorAction = {
  SessionReset: "session-reset",
  AfiSafiDisable: "afi-safi-disable",
  TreatAsWithdraw: "treat-as-withdraw",
  AttributeDiscard: "attribute-discard",
} as const;
/** Union of {@link ErrorAction} values. */
export type ErrorAction = (typeof ErrorAction)[keyof typeof ErrorAction];
