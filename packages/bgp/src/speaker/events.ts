/**
 * What a speaker reports: best-path changes (what a dataplane installs), peer state transitions and
 * limits, and the per-peer status snapshot used for metrics.
 *
 * @packageDocumentation
 */

import type { SessionState, TransitionReason } from "../fsm/types.js";
import type { PathAttributes } from "../wire/types.js";
import type { Family } from "./options.js";

/** A best-path change of one prefix. */
export interface BestPathEvent {
  readonly type: "best-path";
  /** `addr/len`, e.g. `10.0.0.0/24` or `2001:db8::/32`. */
  readonly prefix: string;
  readonly family: Family;
  /** True when no path is left: remove the route. */
  readonly withdrawn: boolean;
  /** Next hops of the multipath set (one unless ECMP is enabled with `maxPaths`); empty when withdrawn. */
  readonly nextHops: readonly string[];
  /**
   * IPv6 link-local next hops, index-aligned with `nextHops`: the link-local address a peer sent beside
   * the global one (MP_REACH next hop of 32 bytes, RFC 2545 §3), or null where it sent only a global
   * next hop (always null for IPv4 routes and routes we originate). Empty when withdrawn.
   */
  readonly linkLocalNextHops: readonly (string | null)[];
  /** Attributes of the best path (shared and frozen: do not modify); null when withdrawn. */
  readonly attributes: Readonly<PathAttributes> | null;
  /** Id of the peer the best path came from, or null for routes this speaker originates. */
  readonly peer: string | null;
  /** The best path is stale: kept for a restarting peer (graceful restart) until its End-of-RIB. */
  readonly stale: boolean;
}

/** A peer's session changed state. */
export interface PeerStateEvent {
  readonly type: "peer-state";
  readonly peer: string;
  readonly state: SessionState;
  readonly previous: SessionState;
  readonly reason: TransitionReason;
}

/** A peer exceeded its max-prefix limit. */
export interface MaxPrefixEvent {
  readonly type: "max-prefix";
  readonly peer: string;
  readonly limit: number;
  readonly accepted: number;
  readonly action: "teardown" | "warn";
}

/** Anything a speaker reports. */
export type SpeakerEvent = BestPathEvent | PeerStateEvent | MaxPrefixEvent;

/** Messages by type. */
export interface MessageCounters {
  open: number;
  update: number;
  notification: number;
  keepalive: number;
  routeRefresh: number;
}

/** The last error of a peer's session. */
export interface PeerErrorInfo {
  readonly reason: TransitionReason;
  /** NOTIFICATION code/subcode, when one was sent or received. */
  readonly code?: number | undefined;
  readonly subcode?: number | undefined;
  /** True when we sent the NOTIFICATION, false when we received it. */
  readonly sent?: boolean | undefined;
  readonly detail?: string | undefined;
  readonly at: Date;
}

/** Snapshot of one peer for metrics and diagnostics. */
export interface PeerStatus {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly asn: number;
  readonly description: string | undefined;
  readonly state: SessionState;
  /** Milliseconds in Established (0 when not established). */
  readonly uptime: number;
  /** Times the session left Established. */
  readonly flaps: number;
  readonly lastError: PeerErrorInfo | null;
  readonly messagesIn: Readonly<MessageCounters>;
  readonly messagesOut: Readonly<MessageCounters>;
  /** Prefixes announced by the peer (every NLRI seen, before policy). */
  readonly prefixesReceived: number;
  /** Prefixes of the peer in our RIB (after loop checks and import policy; stale ones included). */
  readonly prefixesAccepted: number;
  /** Announcements rejected by loop checks or import policy. */
  readonly prefixesRejected: number;
  /** Prefixes in the peer's Adj-RIB-Out. */
  readonly prefixesAdvertised: number;
  /** Stale prefixes kept for a restarting peer. */
  readonly prefixesStale: number;
  /** What the session negotiated, null when not established. */
  readonly negotiated: {
    readonly holdTime: number;
    readonly keepaliveTime: number;
    readonly peerId: string;
    readonly families: readonly string[];
    readonly fourOctetAs: boolean;
    readonly extendedMessage: boolean;
    readonly addPathReceive: readonly string[];
    readonly gracefulRestart: boolean;
    readonly routeRefresh: boolean;
  } | null;
}

/** A route in the Loc-RIB (see {@link Speaker.routes}). */
export interface BestRoute {
  readonly prefix: string;
  readonly family: Family;
  /** Next hops of the multipath set. */
  readonly nextHops: readonly string[];
  /** See {@link BestPathEvent.linkLocalNextHops}. */
  readonly linkLocalNextHops: readonly (string | null)[];
  readonly attributes: Readonly<PathAttributes>;
  readonly peer: string | null;
  readonly stale: boolean;
}

/** Creates an empty {@link MessageCounters}. */
export function emptyCounters(): MessageCounters {
  return { open: 0, update: 0, notification: 0, keepalive: 0, routeRefresh: 0 };
}

const NAMES = ["", "open", "update", "notification", "keepalive", "routeRefresh"] as const;

/** Counts one message of wire type `type`. */
export function countMessage(c: MessageCounters, type: number, n = 1): void {
  const name = NAMES[type];
  if (name) c[name] += n;
}
