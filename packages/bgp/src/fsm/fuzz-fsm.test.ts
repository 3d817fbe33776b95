import { describe, expect, it } from "vitest";
import { checkInvariants, runFsmFuzz } from "./fuzz-fsm.js";

describe("FSM fuzz", () => {
  it("random event sequences (incl. decoded random bytes) never throw and keep the invariants", () => {
    const stats = runFsmFuzz({ sequences: 1500, maxEvents: 60, seed: 42 });
    expect(stats.events).toBeGreaterThan(10_000);
    // The generator must actually drive the machine through every state, or the fuzz proves little.
    for (const state of ["idle", "connect", "active", "open-sent", "open-confirm", "established"]) {
      expect(stats.visits[state], state).toBeGreaterThan(0);
    }
  });

  it("the invariant checker catches a broken transition", () => {
    expect(() =>
      checkInvariants(
        {
          config: {} as never,
          state: "established",
        } as never,
        {
          from: "established",
          reason: "ignored",
          actions: [{ type: "session-down", reason: "ignored" }],
          state: {
            state: "idle",
            holdDeadline: 5,
            keepaliveDeadline: null,
            connectRetryDeadline: null,
            negotiated: null,
            stopped: false,
            idleHoldDeadline: null,
            idleHoldTime: 0,
            config: { maxIdleHoldTime: 1, idleHoldTime: 1 },
          } as never,
        },
      ),
    ).toThrow(/timers armed in Idle/);
  });
});
