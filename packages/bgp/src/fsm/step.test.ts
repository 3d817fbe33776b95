import { describe, expect, it } from "vitest";
import { checkInvariants } from "./fuzz-fsm.js";
import type { BgpMessage, OpenMessage } from "../wire/types.js";
import {
  createFsm,
  type FsmConfig,
  type FsmEvent,
  type FsmState,
  localCapabilities,
  nextDeadline,
  OPEN_HOLD_TIME,
  SessionState,
  step,
} from "./index.js";

const config: FsmConfig = {
  localAsn: 65000,
  localId: "10.0.0.1",
  peerAsn: 65001,
  passive: false,
  holdTime: 9,
  connectRetryTime: 5,
  idleHoldTime: 1,
  maxIdleHoldTime: 8,
  idleHoldResetAfter: 60,
  capabilities: localCapabilities({ asn: 65000 }),
};

const peerOpen: OpenMessage = {
  type: 1,
  version: 4,
  myAs: 65001,
  holdTime: 30,
  bgpId: "10.0.0.2",
  capabilities: localCapabilities({ asn: 65001 }),
};

const KEEPALIVE: BgpMessage = { type: 4 };
const UPDATE: BgpMessage = { type: 2, withdrawn: [], attributes: {}, nlri: [] };
const NOTIFICATION: BgpMessage = { type: 3, code: 6, subcode: 2, data: new Uint8Array(0) };
const REFRESH: BgpMessage = { type: 5, afi: 1, subtype: 0, safi: 1 };

function drive(s: FsmState, events: FsmEvent[], now = 0): FsmState {
  for (const e of events) s = step(s, e, now).state;
  return s;
}

/** A state machine brought into `target` by the usual path. */
function inState(target: SessionState, cfg: FsmConfig = config): FsmState {
  const idle = createFsm(cfg);
  switch (target) {
    case "idle":
      return { ...idle, stopped: false };
    case "connect":
      return drive(idle, [{ type: "start" }]);
    case "active":
      return drive(idle, [{ type: "start" }, { type: "tcp-failed" }]);
    case "open-sent":
      return drive(idle, [{ type: "start" }, { type: "tcp-connected", direction: "outbound" }]);
    case "open-confirm":
      return drive(inState("open-sent", cfg), [{ type: "message", message: peerOpen }]);
    case "established":
      return drive(inState("open-confirm", cfg), [{ type: "message", message: KEEPALIVE }]);
  }
}

const msg = (message: BgpMessage): FsmEvent => ({ type: "message", message });

type Row = [SessionState, string, FsmEvent, SessionState, string, string[]];

/** The transition table: [from, label, event, to, reason, action types]. */
const table: Row[] = [
  ["idle", "start", { type: "start" }, "connect", "manual-start", ["connect"]],
  ["idle", "stop", { type: "stop" }, "idle", "manual-stop", []],
  [
    "idle",
    "tcp-connected",
    { type: "tcp-connected", direction: "inbound" },
    "idle",
    "tcp-refused",
    ["close"],
  ],
  ["idle", "tcp-failed", { type: "tcp-failed" }, "idle", "ignored", []],
  ["idle", "keepalive", msg(KEEPALIVE), "idle", "ignored", []],
  ["idle", "notification", msg(NOTIFICATION), "idle", "ignored", []],
  ["idle", "collision-lost", { type: "collision-lost" }, "idle", "ignored", []],
  ["connect", "start", { type: "start" }, "connect", "ignored", []],
  ["connect", "stop", { type: "stop" }, "idle", "manual-stop", ["close"]],
  [
    "connect",
    "tcp-connected",
    { type: "tcp-connected", direction: "outbound" },
    "open-sent",
    "tcp-connected",
    ["send"],
  ],
  ["connect", "tcp-failed", { type: "tcp-failed" }, "active", "tcp-failed", []],
  ["connect", "keepalive", msg(KEEPALIVE), "idle", "unexpected-message", ["close"]],
  ["connect", "notification", msg(NOTIFICATION), "idle", "notification-received", ["close"]],
  ["active", "stop", { type: "stop" }, "idle", "manual-stop", ["close"]],
  [
    "active",
    "tcp-connected",
    { type: "tcp-connected", direction: "inbound" },
    "open-sent",
    "tcp-connected",
    ["send"],
  ],
  ["active", "tcp-failed", { type: "tcp-failed" }, "idle", "tcp-failed", ["close"]],
  ["active", "update", msg(UPDATE), "idle", "unexpected-message", ["close"]],
  ["open-sent", "stop", { type: "stop" }, "idle", "manual-stop", ["send", "close"]],
  ["open-sent", "open", msg(peerOpen), "open-confirm", "open-received", ["send"]],
  ["open-sent", "keepalive", msg(KEEPALIVE), "idle", "unexpected-message", ["send", "close"]],
  ["open-sent", "update", msg(UPDATE), "idle", "unexpected-message", ["send", "close"]],
  ["open-sent", "notification", msg(NOTIFICATION), "idle", "notification-received", ["close"]],
  ["open-sent", "tcp-failed", { type: "tcp-failed" }, "active", "tcp-failed", ["close"]],
  [
    "open-sent",
    "tcp-connected",
    { type: "tcp-connected", direction: "inbound" },
    "open-sent",
    "tcp-refused",
    ["close"],
  ],
  ["open-sent", "collision-lost", { type: "collision-lost" }, "idle", "collision-lost", ["send", "close"]],
  ["open-confirm", "keepalive", msg(KEEPALIVE), "established", "keepalive-received", ["established"]],
  ["open-confirm", "open", msg(peerOpen), "idle", "unexpected-message", ["send", "close"]],
  ["open-confirm", "update", msg(UPDATE), "idle", "unexpected-message", ["send", "close"]],
  ["open-confirm", "notification", msg(NOTIFICATION), "idle", "notification-received", ["close"]],
  ["open-confirm", "tcp-failed", { type: "tcp-failed" }, "idle", "tcp-failed", ["close"]],
  ["open-confirm", "stop", { type: "stop" }, "idle", "manual-stop", ["send", "close"]],
  ["open-confirm", "collision-lost", { type: "collision-lost" }, "idle", "collision-lost", ["send", "close"]],
  ["established", "keepalive", msg(KEEPALIVE), "established", "keepalive-received", []],
  ["established", "update", msg(UPDATE), "established", "update-received", ["update"]],
  ["established", "route-refresh", msg(REFRESH), "established", "route-refresh-received", ["route-refresh"]],
  ["established", "open", msg(peerOpen), "idle", "unexpected-message", ["send", "close", "session-down"]],
  [
    "established",
    "notification",
    msg(NOTIFICATION),
    "idle",
    "notification-received",
    ["close", "session-down"],
  ],
  ["established", "tcp-failed", { type: "tcp-failed" }, "idle", "tcp-failed", ["close", "session-down"]],
  ["established", "stop", { type: "stop" }, "idle", "manual-stop", ["send", "close", "session-down"]],
  [
    "established",
    "reset",
    { type: "reset", reason: "max-prefix-exceeded", subcode: 1 },
    "idle",
    "max-prefix-exceeded",
    ["send", "close", "session-down"],
  ],
  [
    "established",
    "decode-error (session-reset)",
    { type: "decode-error", code: 3, subcode: 1, data: new Uint8Array(0), action: "session-reset" },
    "idle",
    "decode-error",
    ["send", "close", "session-down"],
  ],
  [
    "established",
    "decode-error (treat-as-withdraw)",
    { type: "decode-error", code: 3, subcode: 5, data: new Uint8Array(0), action: "treat-as-withdraw" },
    "established",
    "update-error-tolerated",
    [],
  ],
  [
    "open-sent",
    "decode-error (treat-as-withdraw outside Established)",
    { type: "decode-error", code: 3, subcode: 5, data: new Uint8Array(0), action: "treat-as-withdraw" },
    "idle",
    "decode-error",
    ["send", "close"],
  ],
];

describe("fsm transition table", () => {
  it.each(table)("%s + %s → %s (%s)", (from, _label, event, to, reason, actions) => {
    const s = inState(from);
    expect(s.state).toBe(from);
    const r = step(s, event, 1000);
    expect(r.from).toBe(from);
    expect(r.state.state).toBe(to);
    expect(r.reason).toBe(reason);
    expect(r.actions.map((a) => a.type)).toEqual(actions);
  });

  it("covers every state", () => {
    const states = new Set(table.map((r) => r[0]));
    expect([...states].sort()).toEqual(Object.values(SessionState).sort());
  });
});

describe("fsm timers", () => {
  it("connect-retry in Connect retries the connection", () => {
    const s = inState("connect");
    expect(nextDeadline(s)).toBe(5000);
    const r = step(s, { type: "timers" }, 5000);
    expect(r.reason).toBe("connect-retry-expired");
    expect(r.actions.map((a) => a.type)).toEqual(["close", "connect"]);
    expect(r.state.connectRetryDeadline).toBe(10_000);
  });

  it("connect-retry in Active connects again (active peer)", () => {
    const s = step(inState("connect"), { type: "tcp-failed" }, 100).state;
    expect(s.state).toBe("active");
    const r = step(s, { type: "timers" }, 5100);
    expect(r.state.state).toBe("connect");
    expect(r.actions.map((a) => a.type)).toEqual(["connect"]);
  });

  it("a passive peer waits in Active without a connect-retry timer", () => {
    const s = step(createFsm({ ...config, passive: true }), { type: "start" }, 0);
    expect(s.state.state).toBe("active");
    expect(s.actions).toEqual([]);
    expect(nextDeadline(s.state)).toBeNull();
  });

  it("OpenSent uses the large hold time, then the negotiated one", () => {
    const s = inState("open-sent");
    expect(s.holdDeadline).toBe(OPEN_HOLD_TIME * 1000);
    const r = step(s, { type: "message", message: peerOpen }, 1000);
    expect(r.state.negotiated?.holdTime).toBe(9);
    expect(r.state.negotiated?.keepaliveTime).toBe(3);
    expect(r.state.holdDeadline).toBe(10_000);
    expect(r.state.keepaliveDeadline).toBe(4000);
  });

  it("hold timer expiry sends NOTIFICATION 4 and takes the session down", () => {
    const s = inState("established");
    const r = step(s, { type: "timers" }, s.holdDeadline!);
    expect(r.reason).toBe("hold-timer-expired");
    expect(r.actions[0]).toEqual({
      type: "send",
      message: { type: 3, code: 4, subcode: 0, data: new Uint8Array(0) },
    });
    expect(r.actions.map((a) => a.type)).toEqual(["send", "close", "session-down"]);
    expect(r.state.state).toBe("idle");
  });

  it("keepalive timer sends KEEPALIVE and re-arms", () => {
    const s = inState("established");
    const r = step(s, { type: "timers" }, s.keepaliveDeadline!);
    expect(r.reason).toBe("keepalive-timer-expired");
    expect(r.actions).toEqual([{ type: "send", message: { type: 4 } }]);
    expect(r.state.keepaliveDeadline).toBe(s.keepaliveDeadline! + 3000);
  });

  it("received messages restart the hold timer", () => {
    const s = inState("established");
    const r = step(s, { type: "message", message: UPDATE }, 5000);
    expect(r.state.holdDeadline).toBe(14_000);
  });

  it("hold time 0 arms no hold or keepalive timers", () => {
    const cfg = { ...config, holdTime: 0 };
    const s = inState("established", cfg);
    expect(s.negotiated?.holdTime).toBe(0);
    expect(s.holdDeadline).toBeNull();
    expect(s.keepaliveDeadline).toBeNull();
    expect(nextDeadline(s)).toBeNull();
  });

  it("backs off exponentially on flaps and resets after a stable session", () => {
    let s = inState("established");
    const delays: number[] = [];
    let now = 1000;
    for (let i = 0; i < 5; i++) {
      s = step(s, { type: "tcp-failed" }, now).state;
      delays.push((s.idleHoldDeadline ?? 0) - now);
      now = s.idleHoldDeadline!;
      s = drive(
        s,
        [
          { type: "timers" },
          { type: "tcp-connected", direction: "outbound" },
          { type: "message", message: peerOpen },
          { type: "message", message: KEEPALIVE },
        ],
        now,
      );
      expect(s.state).toBe("established");
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
    // A session that lived past idleHoldResetAfter starts from the initial delay again.
    now += 61_000;
    s = step(s, { type: "message", message: KEEPALIVE }, now - 1).state;
    s = step(s, { type: "tcp-failed" }, now).state;
    expect(s.idleHoldDeadline! - now).toBe(1000);
    expect(s.flaps).toBe(6);
  });

  it("manual stop does not restart; start does", () => {
    let s = step(inState("established"), { type: "stop" }, 0).state;
    expect(s.stopped).toBe(true);
    expect(nextDeadline(s)).toBeNull();
    s = step(s, { type: "start" }, 0).state;
    expect(s.state).toBe("connect");
  });

  it("Idle restarts automatically after the idle hold", () => {
    const s = step(inState("established"), { type: "tcp-failed" }, 0).state;
    expect(step(s, { type: "timers" }, 999).state.state).toBe("idle");
    const r = step(s, { type: "timers" }, 1000);
    expect(r.reason).toBe("idle-hold-expired");
    expect(r.state.state).toBe("connect");
  });
});

describe("fsm notifications", () => {
  it("manual stop sends Cease/Administrative Shutdown", () => {
    const r = step(inState("established"), { type: "stop" }, 0);
    expect(r.actions[0]).toEqual({
      type: "send",
      message: { type: 3, code: 6, subcode: 2, data: new Uint8Array(0) },
    });
  });

  it("an unexpected message in Established is an FSM error with subcode 3 (RFC 6608)", () => {
    const r = step(inState("established"), { type: "message", message: peerOpen }, 0);
    expect(r.actions[0]).toMatchObject({ type: "send", message: { type: 3, code: 5, subcode: 3 } });
  });

  it("collision loser sends Cease 7 and stays stopped", () => {
    const r = step(inState("open-confirm"), { type: "collision-lost" }, 0);
    expect(r.actions[0]).toMatchObject({ message: { code: 6, subcode: 7 } });
    expect(r.state.stopped).toBe(true);
  });

  it("session-down carries the received NOTIFICATION and the last error is kept", () => {
    const r = step(inState("established"), { type: "message", message: NOTIFICATION }, 5);
    const down = r.actions.find((a) => a.type === "session-down");
    expect(down).toMatchObject({ reason: "notification-received", notification: NOTIFICATION, sent: false });
    expect(r.state.lastError).toMatchObject({
      reason: "notification-received",
      code: 6,
      subcode: 2,
      sent: false,
    });
  });

  it("the established action carries the negotiated session", () => {
    const r = step(inState("open-confirm"), { type: "message", message: KEEPALIVE }, 0);
    const est = r.actions[0];
    expect(est?.type).toBe("established");
    if (est?.type !== "established") return;
    expect(est.negotiated.peerAsn).toBe(65001);
    expect(est.negotiated.codec.asn4).toBe(true);
    expect(est.negotiated.codec.maxMessageSize).toBe(65535);
  });
});

describe("fsm: every state × every event", () => {
  const events: [string, FsmEvent][] = [
    ["start", { type: "start" }],
    ["stop", { type: "stop" }],
    ["reset", { type: "reset", reason: "admin-reset", subcode: 4 }],
    ["tcp-connected in", { type: "tcp-connected", direction: "inbound" }],
    ["tcp-connected out", { type: "tcp-connected", direction: "outbound" }],
    ["tcp-failed", { type: "tcp-failed" }],
    ["timers (none due)", { type: "timers" }],
    ["open", msg(peerOpen)],
    ["bad open", msg({ ...peerOpen, holdTime: 1 })],
    ["update", msg(UPDATE)],
    ["notification", msg(NOTIFICATION)],
    ["keepalive", msg(KEEPALIVE)],
    ["route-refresh", msg(REFRESH)],
    [
      "decode-error reset",
      { type: "decode-error", code: 1, subcode: 2, data: new Uint8Array(0), action: "session-reset" },
    ],
    [
      "decode-error withdraw",
      { type: "decode-error", code: 3, subcode: 1, data: new Uint8Array(0), action: "treat-as-withdraw" },
    ],
    ["collision-lost", { type: "collision-lost" }],
  ];
  const states = Object.values(SessionState);
  const cases = states.flatMap((s) => events.map(([label, e]) => [s, label, e] as const));
  it.each(cases)("%s + %s: a named transition that keeps the invariants", (from, _label, event) => {
    const s = inState(from);
    const r = step(s, event, 500);
    checkInvariants(s, r);
    // A stopped machine never restarts by itself; a session-down only ever follows Established.
    if (r.state.stopped) expect(r.state.idleHoldDeadline).toBeNull();
    if (r.actions.some((a) => a.type === "session-down")) expect(from).toBe("established");
    // Leaving a state with a connection always closes it.
    if (from !== "idle" && r.state.state === "idle")
      expect(r.actions.some((a) => a.type === "close")).toBe(true);
  });
});

describe("RFC 6608: a malformed message of an unexpected type is an FSM error", () => {
  const decodeError = (code: number, subcode: number, messageType?: number): FsmEvent => ({
    type: "decode-error",
    code,
    subcode,
    data: new Uint8Array(0),
    action: "session-reset",
    messageType,
  });
  const notified = (from: SessionState, e: FsmEvent) => {
    const r = step(inState(from), e, 1000);
    const send = r.actions.find((a) => a.type === "send");
    const m = send?.type === "send" ? send.message : undefined;
    return { reason: r.reason, state: r.state.state, code: m?.type === 3 ? [m.code, m.subcode] : null };
  };

  it("a malformed OPEN in Established: NOTIFICATION 5/3, not an OPEN message error", () => {
    // OPEN with an unacceptable hold time (2/6) or a bad version (2/1), received in Established.
    for (const [code, subcode] of [
      [2, 6],
      [2, 1],
      [1, 2], // bad message length for an OPEN
    ] as const) {
      expect(notified(SessionState.Established, decodeError(code, subcode, 1))).toEqual({
        reason: "unexpected-message",
        state: "idle",
        code: [5, 3],
      });
    }
  });

  it("a malformed UPDATE in OpenConfirm is 5/2 and in OpenSent 5/1", () => {
    expect(notified(SessionState.OpenConfirm, decodeError(3, 1, 2)).code).toEqual([5, 2]);
    expect(notified(SessionState.OpenSent, decodeError(3, 1, 2)).code).toEqual([5, 1]);
  });

  it("expected types keep their own error; header errors stay header errors", () => {
    expect(notified(SessionState.OpenSent, decodeError(2, 6, 1))).toMatchObject({
      reason: "decode-error",
      code: [2, 6],
    });
    expect(notified(SessionState.Established, decodeError(3, 1, 2)).code).toEqual([3, 1]);
    expect(notified(SessionState.Established, decodeError(1, 1, 1)).code).toEqual([1, 1]);
    expect(notified(SessionState.Established, decodeError(2, 6)).code).toEqual([2, 6]);
  });
});
