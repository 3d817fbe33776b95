/**
 * Types of the RFC 4271 §8 session state machine: states, input events, output actions and the named
 * reasons every transition carries.
 *
 * @packageDocumentation
 */

import type {
  BgpMessage,
  Capability,
  CodecContext,
  ErrorAction,
  NotificationMessage,
  OpenMessage,
  UpdateMessage,
  RouteRefreshMessage,
} from "../wire/types.js";

/** The six session states of RFC 4271 §8.2.2. */
export const SessionState = {
  Idle: "idle",
  Connect: "connect",
  Active: "active",
  OpenSent: "open-sent",
  OpenConfirm: "open-confirm",
  Established: "established",
} as const;
/** Union of {@link SessionState} values. */
export type SessionState = (typeof SessionState)[keyof typeof SessionState];

/** Which side opened the TCP connection a state machine runs on. */
export type ConnectionDirection = "outbound" | "inbound";

/**
 * Static configuration of one session. Times are in seconds (as on the wire); the FSM converts them to
 * millisecond deadlines against the clock the driver passes to {@link step}.
 */
export interface FsmConfig {
  /** Our ASN (4-octet capable). */
  readonly localAsn: number;
  /** Our BGP identifier (dotted quad). */
  readonly localId: string;
  /** The ASN the peer must announce (RFC 4271 §6.2 "Bad Peer AS" otherwise). */
  readonly peerAsn: number;
  /** Passive peers never connect out; they wait in Active for the peer to connect. */
  readonly passive: boolean;
  /** Hold time we propose: 0 (no keepalives) or at least 3. */
  readonly holdTime: number;
  /** ConnectRetry timer (RFC suggests 120 s). */
  readonly connectRetryTime: number;
  /** First idle-hold delay after a session error; doubles on each further flap. 0 restarts at once. */
  readonly idleHoldTime: number;
  /** Upper bound of the idle-hold back-off. */
  readonly maxIdleHoldTime: number;
  /** A session that stayed Established this long resets the back-off to {@link idleHoldTime}. */
  readonly idleHoldResetAfter: number;
  /** Capabilities we put in our OPEN (see `localCapabilities`). */
  readonly capabilities: readonly Capability[];
}

/** What both sides agreed in their OPEN messages. */
export interface Negotiated {
  /** Hold time in seconds (0: no hold or keepalive timers). */
  readonly holdTime: number;
  /** Keepalive interval in seconds (hold time / 3, rounded down; 0 when hold time is 0). */
  readonly keepaliveTime: number;
  /** The peer's real ASN (from the 4-octet AS capability when present). */
  readonly peerAsn: number;
  /** The peer's BGP identifier. */
  readonly peerId: string;
  /** Families ("afi/safi") both sides enabled. */
  readonly families: ReadonlySet<string>;
  /** The peer supports ROUTE-REFRESH (RFC 2918). */
  readonly routeRefresh: boolean;
  /**
   * The peer's graceful-restart capability when both sides advertised one (RFC 4724), else null.
   * `families` lists the families whose forwarding state the peer preserved across a restart.
   */
  readonly gracefulRestart: {
    readonly restartTime: number;
    readonly restartState: boolean;
    readonly families: ReadonlySet<string>;
  } | null;
  /** What the codec needs to know for this session. */
  readonly codec: CodecContext;
}

/** Why a transition happened. Every {@link StepResult} names one. */
export const TransitionReason = {
  ManualStart: "manual-start",
  ManualStop: "manual-stop",
  IdleHoldExpired: "idle-hold-expired",
  ConnectRetryExpired: "connect-retry-expired",
  HoldTimerExpired: "hold-timer-expired",
  KeepaliveTimerExpired: "keepalive-timer-expired",
  TcpConnected: "tcp-connected",
  TcpFailed: "tcp-failed",
  TcpRefused: "tcp-refused",
  OpenReceived: "open-received",
  OpenRejected: "open-rejected",
  KeepaliveReceived: "keepalive-received",
  UpdateReceived: "update-received",
  RouteRefreshReceived: "route-refresh-received",
  NotificationReceived: "notification-received",
  UnexpectedMessage: "unexpected-message",
  DecodeError: "decode-error",
  UpdateErrorTolerated: "update-error-tolerated",
  CollisionLost: "collision-lost",
  AdminReset: "admin-reset",
  MaxPrefixExceeded: "max-prefix-exceeded",
  Ignored: "ignored",
} as const;
/** Union of {@link TransitionReason} values. */
export type TransitionReason = (typeof TransitionReason)[keyof typeof TransitionReason];

/** Input of {@link step}. */
export type FsmEvent =
  /** ManualStart/AutomaticStart (RFC 4271 events 1–5): leave Idle now, ignoring any idle-hold delay. */
  | { readonly type: "start" }
  /** ManualStop (event 2): send Cease/Administrative Shutdown when a session exists and stay Idle. */
  | { readonly type: "stop"; readonly subcode?: number | undefined; readonly data?: Uint8Array | undefined }
  /** Close the session with a Cease (e.g. admin reset, max-prefix) and restart after the idle hold. */
  | {
      readonly type: "reset";
      readonly reason: "admin-reset" | "max-prefix-exceeded";
      readonly subcode: number;
      readonly data?: Uint8Array | undefined;
    }
  /** The TCP connection is up (events 16/17). */
  | { readonly type: "tcp-connected"; readonly direction: ConnectionDirection }
  /** The TCP connection failed or closed (event 18). */
  | { readonly type: "tcp-failed"; readonly error?: string | undefined }
  /** Let expired timers fire: the driver sends this at {@link nextDeadline}. */
  | { readonly type: "timers" }
  /** A decoded message from the peer. */
  | { readonly type: "message"; readonly message: BgpMessage }
  /**
   * A message that did not decode. `action` is the RFC 7606 verdict; anything but `session-reset` on an
   * UPDATE keeps the session (the speaker applies treat-as-withdraw or attribute discard itself).
   */
  | {
      readonly type: "decode-error";
      readonly code: number;
      readonly subcode: number;
      readonly data: Uint8Array;
      readonly action: ErrorAction;
      readonly message?: string | undefined;
      /**
       * Type of the message (1..5) when its header named one, though its body was malformed. A type the
       * state does not expect is then an FSM error (RFC 6608), e.g. a malformed OPEN in Established.
       */
      readonly messageType?: number | undefined;
    }
  /** This connection lost the collision resolution of RFC 4271 §6.8. */
  | { readonly type: "collision-lost" };

/** Output of {@link step}: what the driver must do, in order. */
export type FsmAction =
  | { readonly type: "connect" }
  | { readonly type: "close" }
  | { readonly type: "send"; readonly message: BgpMessage }
  | { readonly type: "established"; readonly negotiated: Negotiated }
  /** The Established session ended; `notification` is the one sent or received, if any. */
  | {
      readonly type: "session-down";
      readonly reason: TransitionReason;
      readonly notification?: NotificationMessage | undefined;
      readonly sent?: boolean | undefined;
    }
  | { readonly type: "update"; readonly message: UpdateMessage }
  | { readonly type: "route-refresh"; readonly message: RouteRefreshMessage };

/** The last error that took the session down, for counters and diagnostics. */
export interface FsmError {
  readonly reason: TransitionReason;
  /** NOTIFICATION code/subcode, when one was sent (`sent`) or received. */
  readonly code?: number | undefined;
  readonly subcode?: number | undefined;
  readonly sent?: boolean | undefined;
  readonly detail?: string | undefined;
  readonly at: number;
}

/**
 * The whole state of one session: plain data, never mutated by {@link step} (it returns a new object).
 * Timers are absolute deadlines in the driver's clock (milliseconds), `null` when stopped.
 */
export interface FsmState {
  readonly config: FsmConfig;
  readonly state: SessionState;
  /** True after a ManualStop: no automatic restart until the next `start`. */
  readonly stopped: boolean;
  readonly direction: ConnectionDirection | null;
  readonly connectRetryCounter: number;
  readonly connectRetryDeadline: number | null;
  readonly holdDeadline: number | null;
  readonly keepaliveDeadline: number | null;
  readonly idleHoldDeadline: number | null;
  /** Current idle-hold delay in seconds (the back-off). */
  readonly idleHoldTime: number;
  readonly peerOpen: OpenMessage | null;
  readonly negotiated: Negotiated | null;
  readonly establishedAt: number | null;
  /** Number of times the session left Established. */
  readonly flaps: number;
  readonly lastError: FsmError | null;
}

/** Result of {@link step}. */
export interface StepResult {
  readonly state: FsmState;
  readonly actions: readonly FsmAction[];
  readonly from: SessionState;
  readonly reason: TransitionReason;
}
