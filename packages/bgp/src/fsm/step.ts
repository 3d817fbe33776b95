/**
 * The RFC 4271 §8 state machine as a pure function. `step(state, event, now)` returns the next state,
 * the actions for the driver (connect, close, send, deliver) and the named reason of the transition.
 * Timers are deadlines in the state; the driver asks {@link nextDeadline} and sends a `timers` event then.
 *
 * @packageDocumentation
 */

import type { BgpMessage, NotificationMessage } from "../wire/types.js";
import { buildOpen, CeaseSubcode, FsmSubcode, negotiateOpen, NotifyCode } from "./negotiate.js";
import type {
  FsmAction,
  FsmConfig,
  FsmError,
  FsmEvent,
  FsmState,
  SessionState as SessionStateType,
  StepResult,
  TransitionReason as Reason,
} from "./types.js";
import { SessionState, TransitionReason } from "./types.js";

/** Hold time while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes). */
export const OPEN_HOLD_TIME = 240;

const EMPTY = new Uint8Array(0);

/** The initial state: Idle and stopped until a `start` event. */
export function createFsm(config: FsmConfig): FsmState {
  return {
    config,
    state: SessionState.Idle,
    stopped: true,
    direction: null,
    connectRetryCounter: 0,
    connectRetryDeadline: null,
    holdDeadline: null,
    keepaliveDeadline: null,
    idleHoldDeadline: null,
    idleHoldTime: config.idleHoldTime,
    peerOpen: null,
    negotiated: null,
    establishedAt: null,
    flaps: 0,
    lastError: null,
  };
}

/** The earliest armed timer of `s` (milliseconds), or null when none is armed. */
export function nextDeadline(s: FsmState): number | null {
  let d: number | null = null;
  for (const t of [s.connectRetryDeadline, s.holdDeadline, s.keepaliveDeadline, s.idleHoldDeadline]) {
    if (t !== null && (d === null || t < d)) d = t;
  }
  return d;
}

function notification(code: number, subcode: number, data: Uint8Array = EMPTY): NotificationMessage {
  return { type: 3, code, subcode, data };
}

function result(from: FsmState, state: FsmState, reason: Reason, actions: FsmAction[] = []): StepResult {
  return { state, actions, from: from.state, reason };
}

function ms(seconds: number): number {
  return seconds * 1000;
}

/** Leaves any state for Connect (active peers) or Active (passive peers). */
function startSession(s: FsmState, now: number, reason: Reason): StepResult {
  const base = { ...s, stopped: false, idleHoldDeadline: null, direction: null };
  if (s.config.passive) {
    return result(s, { ...base, state: SessionState.Active, connectRetryDeadline: null }, reason);
  }
  return result(
    s,
    { ...base, state: SessionState.Connect, connectRetryDeadline: now + ms(s.config.connectRetryTime) },
    reason,
    [{ type: "connect" }],
  );
}

interface IdleOptions {
  /** Stay Idle until the next `start` (ManualStop, collision loser). */
  stop?: boolean;
  /** The NOTIFICATION to send before closing. */
  send?: NotificationMessage | undefined;
  /** The NOTIFICATION received. */
  received?: NotificationMessage | undefined;
  detail?: string | undefined;
  /** Count as an error for the idle-hold back-off (default true). */
  error?: boolean;
}

/** Closes the connection and goes to Idle, arming the idle-hold back-off unless stopped. */
function toIdle(s: FsmState, now: number, reason: Reason, o: IdleOptions = {}): StepResult {
  const actions: FsmAction[] = [];
  if (o.send) actions.push({ type: "send", message: o.send });
  if (s.state !== SessionState.Idle) actions.push({ type: "close" });
  const wasEstablished = s.state === SessionState.Established;
  if (wasEstablished) {
    const n = o.send ?? o.received;
    actions.push({ type: "session-down", reason, notification: n, sent: o.send !== undefined });
  }
  const stopped = o.stop === true || s.stopped;
  let backoff = s.idleHoldTime;
  if (
    wasEstablished &&
    s.establishedAt !== null &&
    now - s.establishedAt >= ms(s.config.idleHoldResetAfter)
  ) {
    backoff = s.config.idleHoldTime;
  }
  const isError = o.error ?? true;
  const delay = isError ? backoff : s.config.idleHoldTime;
  const nextBackoff = isError
    ? Math.min(s.config.maxIdleHoldTime, Math.max(backoff * 2, backoff === 0 ? 0 : 1))
    : backoff;
  const n = o.send ?? o.received;
  const lastError: FsmError | null = isError
    ? {
        reason,
        code: n?.code,
        subcode: n?.subcode,
        sent: n === undefined ? undefined : o.send !== undefined,
        detail: o.detail,
        at: now,
      }
    : s.lastError;
  return result(
    s,
    {
      ...s,
      state: SessionState.Idle,
      stopped,
      direction: null,
      connectRetryDeadline: null,
      holdDeadline: null,
      keepaliveDeadline: null,
      idleHoldDeadline: stopped ? null : now + ms(delay),
      idleHoldTime: nextBackoff,
      connectRetryCounter: s.connectRetryCounter + (isError ? 1 : 0),
      peerOpen: null,
      negotiated: null,
      establishedAt: null,
      flaps: s.flaps + (wasEstablished ? 1 : 0),
      lastError,
    },
    reason,
    actions,
  );
}

function fsmErrorSubcode(state: SessionStateType): number {
  if (state === SessionState.OpenSent) return FsmSubcode.OpenSent;
  if (state === SessionState.OpenConfirm) return FsmSubcode.OpenConfirm;
  if (state === SessionState.Established) return FsmSubcode.Established;
  return FsmSubcode.Unspecified;
}

function armHold(s: FsmState, now: number): number | null {
  const hold = s.negotiated?.holdTime ?? 0;
  return hold === 0 ? null : now + ms(hold);
}

function armKeepalive(s: FsmState, now: number): number | null {
  const k = s.negotiated?.keepaliveTime ?? 0;
  return k === 0 ? null : now + ms(k);
}

function expired(d: number | null, now: number): boolean {
  return d !== null && d <= now;
}

/**
 * Advances the state machine by one event. Pure: `s` is not modified. `now` is the driver's clock in
 * milliseconds (any monotonic origin).
 */
export function step(s: FsmState, event: FsmEvent, now: number): StepResult {
  switch (event.type) {
    case "start":
      if (s.state !== SessionState.Idle) return result(s, { ...s, stopped: false }, TransitionReason.Ignored);
      return startSession(s, now, TransitionReason.ManualStart);
    case "stop":
      if (s.state === SessionState.Idle) {
        return result(s, { ...s, stopped: true, idleHoldDeadline: null }, TransitionReason.ManualStop);
      }
      return toIdle(s, now, TransitionReason.ManualStop, {
        stop: true,
        error: false,
        send: hasSession(s.state)
          ? notification(NotifyCode.Cease, event.subcode ?? CeaseSubcode.AdministrativeShutdown, event.data)
          : undefined,
      });
    case "reset":
      if (s.state === SessionState.Idle) return result(s, s, TransitionReason.Ignored);
      return toIdle(s, now, event.reason, {
        send: hasSession(s.state) ? notification(NotifyCode.Cease, event.subcode, event.data) : undefined,
      });
    case "collision-lost":
      if (s.state === SessionState.Idle) {
        return result(s, { ...s, stopped: true, idleHoldDeadline: null }, TransitionReason.Ignored);
      }
      return toIdle(s, now, TransitionReason.CollisionLost, {
        stop: true,
        error: false,
        send: hasSession(s.state)
          ? notification(NotifyCode.Cease, CeaseSubcode.ConnectionCollisionResolution)
          : undefined,
      });
    case "timers":
      return onTimers(s, now);
    case "tcp-connected":
      return onConnected(s, event.direction, now);
    case "tcp-failed":
      return onTcpFailed(s, now, event.error);
    case "message":
      return onMessage(s, event.message, now);
    case "decode-error":
      return onDecodeError(s, event, now);
  }
}

/** States in which a TCP connection carries (part of) a BGP session, so a NOTIFICATION can be sent. */
function hasSession(state: SessionStateType): boolean {
  return (
    state === SessionState.OpenSent ||
    state === SessionState.OpenConfirm ||
    state === SessionState.Established
  );
}

function onTimers(s: FsmState, now: number): StepResult {
  if (expired(s.holdDeadline, now)) {
    return toIdle(s, now, TransitionReason.HoldTimerExpired, {
      send: notification(NotifyCode.HoldTimerExpired, 0),
    });
  }
  if (expired(s.idleHoldDeadline, now)) {
    if (s.state !== SessionState.Idle || s.stopped) {
      return result(s, { ...s, idleHoldDeadline: null }, TransitionReason.Ignored);
    }
    return startSession(s, now, TransitionReason.IdleHoldExpired);
  }
  if (expired(s.connectRetryDeadline, now)) {
    const deadline = now + ms(s.config.connectRetryTime);
    if (s.state === SessionState.Connect) {
      // RFC 4271 §8.2.2 (Connect, event 9): drop the attempt, restart the timer, connect again.
      return result(
        s,
        { ...s, connectRetryDeadline: deadline, connectRetryCounter: s.connectRetryCounter + 1 },
        TransitionReason.ConnectRetryExpired,
        [{ type: "close" }, { type: "connect" }],
      );
    }
    if (s.state === SessionState.Active && !s.config.passive) {
      return result(
        s,
        { ...s, state: SessionState.Connect, connectRetryDeadline: deadline },
        TransitionReason.ConnectRetryExpired,
        [{ type: "connect" }],
      );
    }
    return result(s, { ...s, connectRetryDeadline: null }, TransitionReason.Ignored);
  }
  if (expired(s.keepaliveDeadline, now)) {
    if (s.state === SessionState.OpenConfirm || s.state === SessionState.Established) {
      return result(
        s,
        { ...s, keepaliveDeadline: armKeepalive(s, now) },
        TransitionReason.KeepaliveTimerExpired,
        [{ type: "send", message: { type: 4 } }],
      );
    }
    return result(s, { ...s, keepaliveDeadline: null }, TransitionReason.Ignored);
  }
  return result(s, s, TransitionReason.Ignored);
}

function onConnected(s: FsmState, direction: "inbound" | "outbound", now: number): StepResult {
  if (s.state === SessionState.Connect || s.state === SessionState.Active) {
    return result(
      s,
      {
        ...s,
        state: SessionState.OpenSent,
        direction,
        connectRetryDeadline: null,
        holdDeadline: now + ms(OPEN_HOLD_TIME),
      },
      TransitionReason.TcpConnected,
      [{ type: "send", message: buildOpen(s.config) }],
    );
  }
  // Idle refuses connections (RFC 4271 §8.2.2); later states already have one: the driver runs collision
  // detection with a second state machine, so a connection offered to this one is refused.
  return result(s, s, TransitionReason.TcpRefused, [{ type: "close" }]);
}

function onTcpFailed(s: FsmState, now: number, detail: string | undefined): StepResult {
  switch (s.state) {
    case SessionState.Idle:
      return result(s, s, TransitionReason.Ignored);
    case SessionState.Connect:
    case SessionState.OpenSent:
      // Connect (event 18) and OpenSent (event 18): back to Active with a fresh ConnectRetry timer.
      return result(
        s,
        {
          ...s,
          state: SessionState.Active,
          direction: null,
          holdDeadline: null,
          connectRetryDeadline: s.config.passive ? null : now + ms(s.config.connectRetryTime),
          connectRetryCounter: s.connectRetryCounter + 1,
          lastError: { reason: TransitionReason.TcpFailed, detail, at: now },
        },
        TransitionReason.TcpFailed,
        s.state === SessionState.OpenSent ? [{ type: "close" }] : [],
      );
    default:
      return toIdle(s, now, TransitionReason.TcpFailed, { detail });
  }
}

function onMessage(s: FsmState, m: BgpMessage, now: number): StepResult {
  if (m.type === 3) {
    if (s.state === SessionState.Idle) return result(s, s, TransitionReason.Ignored);
    return toIdle(s, now, TransitionReason.NotificationReceived, { received: m });
  }
  switch (s.state) {
    case SessionState.OpenSent:
      if (m.type === 1) {
        const r = negotiateOpen(m, s.config);
        if (!r.ok) {
          return toIdle(s, now, TransitionReason.OpenRejected, {
            send: notification(r.code, r.subcode, r.data),
            detail: r.detail,
          });
        }
        const next = { ...s, peerOpen: m, negotiated: r.negotiated };
        return result(
          s,
          {
            ...next,
            state: SessionState.OpenConfirm,
            holdDeadline: armHold(next, now),
            keepaliveDeadline: armKeepalive(next, now),
          },
          TransitionReason.OpenReceived,
          [{ type: "send", message: { type: 4 } }],
        );
      }
      break;
    case SessionState.OpenConfirm:
      if (m.type === 4) {
        const negotiated = s.negotiated!;
        return result(
          s,
          {
            ...s,
            state: SessionState.Established,
            establishedAt: now,
            holdDeadline: armHold(s, now),
            connectRetryCounter: 0,
          },
          TransitionReason.KeepaliveReceived,
          [{ type: "established", negotiated }],
        );
      }
      break;
    case SessionState.Established:
      if (m.type === 4) {
        return result(s, { ...s, holdDeadline: armHold(s, now) }, TransitionReason.KeepaliveReceived);
      }
      if (m.type === 2) {
        return result(s, { ...s, holdDeadline: armHold(s, now) }, TransitionReason.UpdateReceived, [
          { type: "update", message: m },
        ]);
      }
      if (m.type === 5) {
        return result(s, { ...s, holdDeadline: armHold(s, now) }, TransitionReason.RouteRefreshReceived, [
          { type: "route-refresh", message: m },
        ]);
      }
      break;
    default:
      // Connect/Active have no connection to receive on, Idle has none either: a stray message is dropped.
      if (s.state === SessionState.Idle) return result(s, s, TransitionReason.Ignored);
      return toIdle(s, now, TransitionReason.UnexpectedMessage, {
        detail: `message type ${m.type} in ${s.state}`,
      });
  }
  return toIdle(s, now, TransitionReason.UnexpectedMessage, {
    send: notification(NotifyCode.Fsm, fsmErrorSubcode(s.state)),
    detail: `message type ${m.type} in ${s.state}`,
  });
}

/** Message types a state with a connection handles (NOTIFICATION always; OPEN in OpenConfirm: collisions). */
function expectedType(state: SessionStateType, type: number): boolean {
  if (type === 3) return true;
  if (state === SessionState.OpenSent) return type === 1;
  if (state === SessionState.OpenConfirm) return type === 1 || type === 4;
  return type === 2 || type === 4 || type === 5;
}

function onDecodeError(s: FsmState, e: FsmEvent & { type: "decode-error" }, now: number): StepResult {
  if (s.state === SessionState.Idle) return result(s, s, TransitionReason.Ignored);
  // RFC 6608 §3: the type decides before the body does. A message of a type this state does not expect
  // is an FSM error even when malformed (an OPEN in Established: 5/3, not an OPEN message error). A
  // header that is itself broken (marker, unknown type) stays a header error.
  const t = e.messageType;
  if (
    t !== undefined &&
    t >= 1 &&
    t <= 5 &&
    hasSession(s.state) &&
    !expectedType(s.state, t) &&
    !(e.code === NotifyCode.MessageHeader && e.subcode !== 2)
  ) {
    return toIdle(s, now, TransitionReason.UnexpectedMessage, {
      send: notification(NotifyCode.Fsm, fsmErrorSubcode(s.state)),
      detail: `malformed message type ${t} in ${s.state}`,
    });
  }
  if (
    s.state === SessionState.Established &&
    (e.action === "treat-as-withdraw" || e.action === "attribute-discard")
  ) {
    // RFC 7606: the session stays; the message still counts as received for the hold timer.
    return result(s, { ...s, holdDeadline: armHold(s, now) }, TransitionReason.UpdateErrorTolerated);
  }
  return toIdle(s, now, TransitionReason.DecodeError, {
    send: hasSession(s.state) ? notification(e.code, e.subcode, e.data) : undefined,
    detail: e.message,
  });
}
