/**
 * OPEN validation (RFC 4271 §6.2) and capability negotiation (RFC 5492 and the capability RFCs): turns
 * the peer's OPEN plus our configuration into a {@link Negotiated} session, or into the NOTIFICATION the
 * RFC prescribes.
 *
 * @packageDocumentation
 */

import {
  AS_TRANS,
  CeaseSubcode as WireCeaseSubcode,
  FsmErrorSubcode,
  MAX_EXTENDED_MESSAGE_SIZE,
  MAX_MESSAGE_SIZE,
  NotificationCode,
  OpenErrorSubcode,
} from "../wire/constants.js";
import type { Capability, CodecContext, OpenMessage } from "../wire/types.js";
import type { FsmConfig, Negotiated } from "./types.js";

// The numbers live once, in the wire constants; the FSM keeps its own shorter names (public API).

/** NOTIFICATION error codes (RFC 4271 §4.5, RFC 7313). */
export const NotifyCode = {
  MessageHeader: NotificationCode.MessageHeaderError,
  Open: NotificationCode.OpenMessageError,
  Update: NotificationCode.UpdateMessageError,
  HoldTimerExpired: NotificationCode.HoldTimerExpired,
  Fsm: NotificationCode.FiniteStateMachineError,
  Cease: NotificationCode.Cease,
  RouteRefresh: NotificationCode.RouteRefreshMessageError,
} as const;

/** OPEN message error subcodes (RFC 4271 §6.2, RFC 5492). */
export const OpenSubcode = {
  UnsupportedVersion: OpenErrorSubcode.UnsupportedVersionNumber,
  BadPeerAs: OpenErrorSubcode.BadPeerAs,
  BadBgpIdentifier: OpenErrorSubcode.BadBgpIdentifier,
  UnsupportedOptionalParameter: OpenErrorSubcode.UnsupportedOptionalParameter,
  UnacceptableHoldTime: OpenErrorSubcode.UnacceptableHoldTime,
  UnsupportedCapability: OpenErrorSubcode.UnsupportedCapability,
} as const;

/** FSM error subcodes (RFC 6608). */
export const FsmSubcode = {
  Unspecified: FsmErrorSubcode.Unspecified,
  OpenSent: FsmErrorSubcode.UnexpectedMessageInOpenSent,
  OpenConfirm: FsmErrorSubcode.UnexpectedMessageInOpenConfirm,
  Established: FsmErrorSubcode.UnexpectedMessageInEstablished,
} as const;

/** Cease subcodes (RFC 4486, RFC 8203). */
export const CeaseSubcode = {
  MaxPrefixes: WireCeaseSubcode.MaximumPrefixesReached,
  AdministrativeShutdown: WireCeaseSubcode.AdministrativeShutdown,
  PeerDeconfigured: WireCeaseSubcode.PeerDeconfigured,
  AdministrativeReset: WireCeaseSubcode.AdministrativeReset,
  ConnectionRejected: WireCeaseSubcode.ConnectionRejected,
  OtherConfigurationChange: WireCeaseSubcode.OtherConfigurationChange,
  ConnectionCollisionResolution: WireCeaseSubcode.ConnectionCollisionResolution,
  OutOfResources: WireCeaseSubcode.OutOfResources,
  HardReset: WireCeaseSubcode.HardReset,
} as const;

// AS_TRANS (RFC 6793) stays importable from the FSM subpath, as before.
export { AS_TRANS };

/** Options of {@link localCapabilities}. */
export interface LocalCapabilityOptions {
  asn: number;
  /** Families to enable, as "afi/safi" (default `["1/1"]`). */
  families?: readonly string[] | undefined;
  /** Families for which we accept ADD-PATH path identifiers (RFC 7911 receive). */
  addPathReceive?: readonly string[] | undefined;
  /** Advertise graceful restart (RFC 4724) with this restart time in seconds; omitted: no GR capability. */
  gracefulRestartTime?: number | undefined;
  /** We restarted and preserved nothing: set the R bit (default false). */
  restarting?: boolean | undefined;
  /**
   * Restarting-speaker side (RFC 4724 §4.1): list every enabled family in the graceful-restart capability
   * with the Forwarding State bit set, so a peer keeps our routes while we restart. Default false: we only
   * help peers that restart (no families listed).
   */
  forwardingPreserved?: boolean | undefined;
  /** Advertise RFC 8654 extended messages (default true). */
  extendedMessage?: boolean | undefined;
}

/** Builds the capability list of our OPEN. */
export function localCapabilities(o: LocalCapabilityOptions): Capability[] {
  const families = o.families ?? ["1/1"];
  const caps: Capability[] = [];
  for (const f of families) {
    const [afi, safi] = splitFamily(f);
    caps.push({ code: 1, kind: "multiprotocol", afi, safi });
  }
  caps.push({ code: 2, kind: "route-refresh" });
  caps.push({ code: 65, kind: "four-octet-as", asn: o.asn });
  if (o.extendedMessage ?? true) caps.push({ code: 6, kind: "extended-message" });
  const addPath = (o.addPathReceive ?? []).filter((f) => families.includes(f));
  if (addPath.length > 0) {
    caps.push({
      code: 69,
      kind: "add-path",
      families: addPath.map((f) => {
        const [afi, safi] = splitFamily(f);
        return { afi, safi, sendReceive: 1 as const };
      }),
    });
  }
  if (o.gracefulRestartTime !== undefined) {
    caps.push({
      code: 64,
      kind: "graceful-restart",
      restartState: o.restarting ?? false,
      notification: false,
      restartTime: o.gracefulRestartTime,
      // A pure receiving speaker (helper) advertises no families: it preserves no forwarding state itself.
      families: o.forwardingPreserved
        ? families.map((f) => {
            const [afi, safi] = splitFamily(f);
            return { afi, safi, forwardingPreserved: true };
          })
        : [],
    });
  }
  return caps;
}

/** Splits "afi/safi" into numbers. */
export function splitFamily(f: string): [number, number] {
  const i = f.indexOf("/");
  return [Number(f.slice(0, i)), Number(f.slice(i + 1))];
}

/** A rejected OPEN: the NOTIFICATION to send. */
export interface OpenRejection {
  readonly ok: false;
  readonly code: number;
  readonly subcode: number;
  readonly data: Uint8Array;
  readonly detail: string;
}

/** An accepted OPEN. */
export interface OpenAcceptance {
  readonly ok: true;
  readonly negotiated: Negotiated;
}

const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** The BGP identifier as an unsigned 32-bit number, or -1 if it is not a dotted quad. */
export function idToNumber(id: string): number {
  const m = DOTTED.exec(id);
  if (!m) return -1;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const b = Number(m[i]);
    if (b > 255) return -1;
    n = n * 256 + b;
  }
  return n;
}

function rejection(code: number, subcode: number, detail: string, data = new Uint8Array(0)): OpenRejection {
  return { ok: false, code, subcode, data, detail };
}

/**
 * Validates the peer's OPEN against our configuration and negotiates the session (hold time: the smaller
 * of both, 0 meaning no keepalives; families, 4-octet AS, ADD-PATH, graceful restart, extended
 * message and extended next hop: what both sides advertised).
 */
export function negotiateOpen(open: OpenMessage, config: FsmConfig): OpenAcceptance | OpenRejection {
  if (open.version !== 4) {
    return rejection(
      NotifyCode.Open,
      OpenSubcode.UnsupportedVersion,
      `version ${open.version}`,
      Uint8Array.of(0, 4),
    );
  }
  const theirCaps = open.capabilities;
  const as4Cap = theirCaps.find((c) => c.kind === "four-octet-as");
  const peerAsn = as4Cap && as4Cap.kind === "four-octet-as" ? as4Cap.asn : open.myAs;
  if (peerAsn !== config.peerAsn) {
    return rejection(
      NotifyCode.Open,
      OpenSubcode.BadPeerAs,
      `peer AS ${peerAsn}, expected ${config.peerAsn}`,
    );
  }
  const idNum = idToNumber(open.bgpId);
  // RFC 6286: the identifier is any non-zero 32-bit value; it must differ from ours inside one AS.
  if (idNum <= 0 || (peerAsn === config.localAsn && open.bgpId === config.localId)) {
    return rejection(NotifyCode.Open, OpenSubcode.BadBgpIdentifier, `BGP identifier ${open.bgpId}`);
  }
  if (open.holdTime === 1 || open.holdTime === 2) {
    return rejection(NotifyCode.Open, OpenSubcode.UnacceptableHoldTime, `hold time ${open.holdTime}`);
  }
  const ours = config.capabilities;
  const ourFamilies = familiesOf(ours);
  const theirMp = theirCaps.filter((c) => c.kind === "multiprotocol");
  // RFC 4760 §8: a peer without MP capabilities speaks IPv4 unicast only.
  const theirFamilies = theirMp.length === 0 ? new Set(["1/1"]) : familiesOf(theirCaps);
  const families = new Set([...ourFamilies].filter((f) => theirFamilies.has(f)));
  if (families.size === 0) {
    return rejection(
      NotifyCode.Open,
      OpenSubcode.UnsupportedCapability,
      `no common address family (ours ${[...ourFamilies].join(",")}, theirs ${[...theirFamilies].join(",")})`,
    );
  }
  const asn4 = as4Cap !== undefined && ours.some((c) => c.kind === "four-octet-as");
  if (!asn4 && config.localAsn > 0xffff) {
    // Without 4-octet AS on both sides the peer would see AS_TRANS for us; RFC 6793 allows it, but it
    // cannot match a configured neighbour AS on their side, so refuse like BIRD does.
    return rejection(NotifyCode.Open, OpenSubcode.UnsupportedCapability, "peer lacks 4-octet AS capability");
  }
  const holdTime = Math.min(open.holdTime, config.holdTime);
  const addPathReceive = new Set<string>();
  const ourAddPath = ours.find((c) => c.kind === "add-path");
  const theirAddPath = theirCaps.find((c) => c.kind === "add-path");
  if (ourAddPath?.kind === "add-path" && theirAddPath?.kind === "add-path") {
    for (const f of ourAddPath.families) {
      const key = `${f.afi}/${f.safi}`;
      if (!families.has(key) || (f.sendReceive & 1) === 0) continue;
      // We receive path ids when the peer sends them (its send bit, value 2).
      if (
        theirAddPath.families.some((t) => t.afi === f.afi && t.safi === f.safi && (t.sendReceive & 2) !== 0)
      ) {
        addPathReceive.add(key);
      }
    }
  }
  const extendedNextHop = new Set<string>();
  const ourEnh = ours.find((c) => c.kind === "extended-next-hop");
  const theirEnh = theirCaps.find((c) => c.kind === "extended-next-hop");
  if (ourEnh?.kind === "extended-next-hop" && theirEnh?.kind === "extended-next-hop") {
    for (const f of ourEnh.families) {
      if (
        theirEnh.families.some((t) => t.afi === f.afi && t.safi === f.safi && t.nextHopAfi === f.nextHopAfi)
      ) {
        extendedNextHop.add(`${f.afi}/${f.safi}`);
      }
    }
  }
  const extendedMessage =
    ours.some((c) => c.kind === "extended-message") && theirCaps.some((c) => c.kind === "extended-message");
  const ourGr = ours.find((c) => c.kind === "graceful-restart");
  const theirGr = theirCaps.find((c) => c.kind === "graceful-restart");
  const gracefulRestart =
    ourGr && theirGr?.kind === "graceful-restart"
      ? {
          restartTime: theirGr.restartTime,
          restartState: theirGr.restartState,
          families: new Set(
            theirGr.families.filter((f) => f.forwardingPreserved).map((f) => `${f.afi}/${f.safi}`),
          ),
        }
      : null;
  const codec: CodecContext = {
    asn4,
    maxMessageSize: extendedMessage ? MAX_EXTENDED_MESSAGE_SIZE : MAX_MESSAGE_SIZE,
    addPathReceive,
    addPathSend: new Set(),
    extendedNextHop,
  };
  return {
    ok: true,
    negotiated: {
      holdTime,
      keepaliveTime: Math.floor(holdTime / 3),
      peerAsn,
      peerId: open.bgpId,
      families,
      routeRefresh: theirCaps.some((c) => c.kind === "route-refresh" || c.kind === "enhanced-route-refresh"),
      gracefulRestart,
      codec,
    },
  };
}

function familiesOf(caps: readonly Capability[]): Set<string> {
  const out = new Set<string>();
  for (const c of caps) if (c.kind === "multiprotocol") out.add(`${c.afi}/${c.safi}`);
  return out;
}

/** Our OPEN message for a configuration. */
export function buildOpen(config: FsmConfig): OpenMessage {
  return {
    type: 1,
    version: 4,
    myAs: config.localAsn > 0xffff ? AS_TRANS : config.localAsn,
    holdTime: config.holdTime,
    bgpId: config.localId,
    capabilities: [...config.capabilities],
  };
}

/**
 * Connection collision resolution (RFC 4271 §6.8): which of two connections to the same peer survives.
 * The connection opened by the speaker with the higher BGP identifier wins; with equal identifiers
 * (allowed between ASes by RFC 6286 §2.3) the one opened by the higher ASN wins.
 */
export function resolveCollision(
  localId: string,
  remoteId: string,
  localAsn: number,
  remoteAsn: number,
): "keep-outbound" | "keep-inbound" {
  const l = idToNumber(localId);
  const r = idToNumber(remoteId);
  if (l !== r) return l > r ? "keep-outbound" : "keep-inbound";
  return localAsn > remoteAsn ? "keep-outbound" : "keep-inbound";
}
