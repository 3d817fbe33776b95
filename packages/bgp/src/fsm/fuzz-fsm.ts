/**
 * FSM fuzzing: random event sequences, including messages produced by decoding random and mutated
 * bytes with the real codec, fed through {@link step}. Checks that `step` never throws and that the
 * state invariants hold after every event. Used by the unit test (small count) and by the package's
 * fuzz script (large count). Not part of the public API.
 *
 * @packageDocumentation
 */

import { DEFAULT_CODEC_CONTEXT } from "../wire/context.js";
import { isBgpWireError } from "../wire/errors.js";
import { decodeMessage, encodeMessage } from "../wire/message.js";
import type { BgpMessage, Capability, OpenMessage } from "../wire/types.js";
import { localCapabilities } from "./negotiate.js";
import { createFsm, nextDeadline, step } from "./step.js";
import type { FsmConfig, FsmEvent, FsmState, StepResult } from "./types.js";
import { SessionState, TransitionReason } from "./types.js";

/** A small deterministic PRNG (mulberry32), so a failing seed can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STATES = new Set<string>(Object.values(SessionState));
const REASONS = new Set<string>(Object.values(TransitionReason));

/** Throws when `r` breaks an invariant of the state machine. */
export function checkInvariants(before: FsmState, r: StepResult): void {
  const s = r.state;
  const fail = (why: string) => {
    throw new Error(`FSM invariant broken (${before.state} → ${s.state}, ${r.reason}): ${why}`);
  };
  if (!STATES.has(s.state)) fail(`unknown state ${s.state}`);
  if (!REASONS.has(r.reason)) fail(`unknown reason ${r.reason}`);
  if (r.from !== before.state) fail("from is not the previous state");
  if (s.state === SessionState.Idle) {
    if (s.holdDeadline !== null || s.keepaliveDeadline !== null || s.connectRetryDeadline !== null) {
      fail("timers armed in Idle");
    }
    if (s.negotiated !== null) fail("negotiated kept in Idle");
    if (s.stopped && s.idleHoldDeadline !== null) fail("stopped but idle hold armed");
  }
  if (s.state === SessionState.Established && (s.negotiated === null || s.peerOpen === null)) {
    fail("Established without a negotiated session");
  }
  if (
    s.keepaliveDeadline !== null &&
    s.state !== SessionState.OpenConfirm &&
    s.state !== SessionState.Established
  ) {
    fail("keepalive timer outside OpenConfirm/Established");
  }
  if (s.holdDeadline !== null && (s.state === SessionState.Connect || s.state === SessionState.Active)) {
    fail("hold timer without a connection");
  }
  if (s.idleHoldTime > Math.max(s.config.maxIdleHoldTime, s.config.idleHoldTime))
    fail("back-off above its maximum");
  for (const a of r.actions) {
    if (a.type === "established" && !(before.state === "open-confirm" && s.state === "established")) {
      fail("established action without the OpenConfirm → Established transition");
    }
    if (a.type === "session-down" && before.state !== "established") fail("session-down without a session");
    if (a.type === "update" && s.state !== "established") fail("update delivered outside Established");
  }
  const closeAt = r.actions.findIndex((a) => a.type === "close");
  if (closeAt >= 0 && r.actions.slice(closeAt).some((a) => a.type === "send")) fail("send after close");
  const d = nextDeadline(s);
  if (d !== null && !Number.isFinite(d)) fail("non-finite deadline");
}

const CONFIG: FsmConfig = {
  localAsn: 65000,
  localId: "10.0.0.1",
  peerAsn: 65001,
  passive: false,
  holdTime: 9,
  connectRetryTime: 5,
  idleHoldTime: 1,
  maxIdleHoldTime: 16,
  idleHoldResetAfter: 60,
  capabilities: localCapabilities({
    asn: 65000,
    families: ["1/1", "2/1"],
    addPathReceive: ["1/1"],
    gracefulRestartTime: 90,
  }),
};

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

function randomOpen(rnd: () => number): OpenMessage {
  const good = rnd() < 0.6;
  const caps: Capability[] = good ? localCapabilities({ asn: 65001, families: ["1/1"] }) : [];
  if (!good && rnd() < 0.5) caps.push({ code: 65, kind: "four-octet-as", asn: Math.floor(rnd() * 2 ** 32) });
  if (rnd() < 0.3)
    caps.push({ code: 1, kind: "multiprotocol", afi: Math.floor(rnd() * 4), safi: Math.floor(rnd() * 3) });
  return {
    type: 1,
    version: good ? 4 : pick(rnd, [3, 4, 5]),
    myAs: good ? 65001 : Math.floor(rnd() * 65536),
    holdTime: good ? pick(rnd, [0, 3, 30, 90]) : Math.floor(rnd() * 65536),
    bgpId: good ? "10.0.0.2" : pick(rnd, ["0.0.0.0", "10.0.0.1", "255.255.255.255", "1.2.3", "10.0.0.2"]),
    capabilities: caps,
  };
}

function randomMessage(rnd: () => number): BgpMessage {
  switch (Math.floor(rnd() * 5)) {
    case 0:
      return randomOpen(rnd);
    case 1:
      return { type: 2, withdrawn: [], attributes: {}, nlri: [] };
    case 2:
      return {
        type: 3,
        code: Math.floor(rnd() * 8),
        subcode: Math.floor(rnd() * 12),
        data: new Uint8Array(0),
      };
    case 3:
      return { type: 4 };
    default:
      return { type: 5, afi: 1, safi: 1, subtype: Math.floor(rnd() * 3) };
  }
}

/** A message event from random or mutated bytes through the real decoder, or its decode error. */
function decodedEvent(rnd: () => number): FsmEvent {
  let bytes: Uint8Array;
  if (rnd() < 0.5) {
    const m = randomMessage(rnd);
    try {
      bytes = encodeMessage(m, DEFAULT_CODEC_CONTEXT).slice();
    } catch {
      // Not encodable (e.g. a malformed identifier): mutate a KEEPALIVE instead.
      bytes = encodeMessage({ type: 4 }, DEFAULT_CODEC_CONTEXT).slice();
    }
    const flips = 1 + Math.floor(rnd() * 4);
    for (let i = 0; i < flips; i++) bytes[Math.floor(rnd() * bytes.length)] = Math.floor(rnd() * 256);
  } else {
    bytes = new Uint8Array(19 + Math.floor(rnd() * 64));
    bytes.fill(0xff, 0, 16);
    for (let i = 16; i < bytes.length; i++) bytes[i] = Math.floor(rnd() * 256);
    bytes[16] = 0;
    bytes[17] = bytes.length;
  }
  try {
    return { type: "message", message: decodeMessage(bytes, DEFAULT_CODEC_CONTEXT) };
  } catch (e) {
    if (!isBgpWireError(e)) throw e;
    return {
      type: "decode-error",
      code: e.notification.code,
      subcode: e.notification.subcode,
      data: e.notification.data,
      action: e.action,
      message: e.message,
      // As the speaker does: the header's type goes with the error (RFC 6608 FSM errors).
      messageType: bytes.length >= 19 ? bytes[18] : undefined,
    };
  }
}

function randomEvent(rnd: () => number): FsmEvent {
  const r = rnd();
  if (r < 0.25) return { type: "message", message: randomMessage(rnd) };
  if (r < 0.45) return decodedEvent(rnd);
  if (r < 0.6) return { type: "timers" };
  if (r < 0.7) return { type: "tcp-connected", direction: rnd() < 0.5 ? "inbound" : "outbound" };
  if (r < 0.78) return { type: "tcp-failed" };
  if (r < 0.84) return { type: "start" };
  if (r < 0.88) return { type: "stop" };
  if (r < 0.92) return { type: "collision-lost" };
  if (r < 0.96) return { type: "reset", reason: "admin-reset", subcode: 4 };
  return { type: "message", message: { type: 4 } };
}

/** Result of {@link runFsmFuzz}. */
export interface FsmFuzzStats {
  sequences: number;
  events: number;
  /** How often each state was entered. */
  visits: Record<string, number>;
}

/** Runs `sequences` random sequences of up to `maxEvents` events each; throws on the first broken invariant. */
export function runFsmFuzz(o: { sequences: number; maxEvents?: number; seed?: number }): FsmFuzzStats {
  const rnd = prng(o.seed ?? 1);
  const max = o.maxEvents ?? 80;
  const visits: Record<string, number> = {};
  let events = 0;
  for (let i = 0; i < o.sequences; i++) {
    const passive = rnd() < 0.3;
    let s = createFsm({ ...CONFIG, passive, holdTime: pick(rnd, [0, 3, 9, 90]) });
    let now = 0;
    const n = 1 + Math.floor(rnd() * max);
    for (let k = 0; k < n; k++) {
      // Time moves forward, sometimes to the next deadline so timers actually fire.
      const d = nextDeadline(s);
      now = d !== null && rnd() < 0.4 ? Math.max(now, d) : now + Math.floor(rnd() * 5000);
      const ev = rnd() < 0.15 ? { type: "timers" as const } : randomEvent(rnd);
      const r = step(s, ev, now);
      checkInvariants(s, r);
      s = r.state;
      visits[s.state] = (visits[s.state] ?? 0) + 1;
      events++;
    }
  }
  return { sequences: o.sequences, events, visits };
}

/** Brings a fresh state machine into one of its states by the ordinary path (for message fuzzing). */
export function fsmInState(target: number, holdTime = 9): FsmState {
  let s = createFsm({ ...CONFIG, holdTime });
  const open = localCapabilities({ asn: 65001, families: ["1/1"] });
  const path: FsmEvent[] = [
    { type: "start" },
    { type: "tcp-connected", direction: "outbound" },
    {
      type: "message",
      message: { type: 1, version: 4, myAs: 65001, holdTime: 90, bgpId: "10.0.0.2", capabilities: open },
    },
    { type: "message", message: { type: 4 } },
  ];
  for (let i = 0; i < Math.min(target, path.length); i++) s = step(s, path[i]!, 0).state;
  return s;
}

/**
 * Feeds one framed message (as bytes) to a state machine in every state: decoded by the real codec
 * into a `message` event, or into a `decode-error` event when the codec rejects it. Throws when `step`
 * throws or an invariant breaks.
 */
export function fuzzFsmWithBytes(bytes: Uint8Array, count?: (outcome: string) => void): void {
  let ev: FsmEvent;
  try {
    ev = { type: "message", message: decodeMessage(bytes, DEFAULT_CODEC_CONTEXT) };
  } catch (e) {
    if (!isBgpWireError(e)) throw e;
    ev = {
      type: "decode-error",
      code: e.notification.code,
      subcode: e.notification.subcode,
      data: e.notification.data,
      action: e.action,
      messageType: bytes.length >= 19 ? bytes[18] : undefined,
    };
  }
  for (let target = 0; target <= 4; target++) {
    const s = fsmInState(target);
    const r = step(s, ev, 1000);
    checkInvariants(s, r);
    count?.(`fsm:${s.state}→${r.state.state}`);
  }
}
