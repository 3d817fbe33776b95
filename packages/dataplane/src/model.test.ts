import type { PolicyUpdate } from "@margay/dataplane-contract";
import { describe, expect, it, vi } from "vitest";
import { isDataplaneError } from "./errors.js";
import { createDataplaneModel, type DataplaneModel } from "./model.js";

const full = (id: string, type: "ip" | "ip-and-port" | "net", members: string[]): PolicyUpdate => ({
  kind: "ip-set-update",
  id,
  type,
  members,
});
const delta = (id: string, added: string[], removed: string[] = []): PolicyUpdate => ({
  kind: "ip-set-delta-update",
  id,
  added,
  removed,
});

function rejected(m: DataplaneModel, updates: PolicyUpdate[]): boolean {
  try {
    m.applyBatch(updates);
    return false;
  } catch (e) {
    return isDataplaneError(e, "invalid-update");
  }
}

describe("batch validation of IP set deltas", () => {
  it("follows the sets as the batch's own updates add and remove them", () => {
    const m = createDataplaneModel();
    m.applyBatch([full("held", "ip-and-port", ["10.0.0.1,tcp:80"])]);
    // A held set takes deltas of its own member syntax, and only those.
    expect(rejected(m, [delta("held", ["10.0.0.2,tcp:81"])])).toBe(false);
    expect(rejected(m, [delta("held", ["10.0.0.3"])])).toBe(true);
    // Created earlier in the same batch: known, with that batch's type.
    expect(rejected(m, [full("new", "ip", []), delta("new", ["10.0.0.4"])])).toBe(false);
    expect(rejected(createDataplaneModel(), [full("n2", "net", []), delta("n2", ["10.0.0.4,tcp:1"])])).toBe(
      true,
    );
    // Removed earlier in the batch: unknown again; re-created with another type: that type.
    expect(rejected(m, [{ kind: "ip-set-remove", id: "held" }, delta("held", [])])).toBe(true);
    // A rejected batch changed nothing: the set it removed is still held.
    expect(m.policy.ipSets.has("held")).toBe(true);
    expect(
      rejected(m, [
        { kind: "ip-set-remove", id: "held" },
        full("held", "ip", []),
        delta("held", ["10.0.0.5"]),
      ]),
    ).toBe(false);
    expect(m.policy.ipSets.get("held")?.type).toBe("ip");
  });

  it("does not walk every held set to validate a small batch", () => {
    const m = createDataplaneModel();
    m.applyBatch(Array.from({ length: 50 }, (_, i) => full(`s${i}`, "ip", [`10.0.${i}.1`])));
    const sets = m.policy.ipSets as Map<string, unknown>;
    const walks = [
      vi.spyOn(sets, "keys"),
      vi.spyOn(sets, "entries"),
      vi.spyOn(sets, "values"),
      vi.spyOn(sets, "forEach"),
      vi.spyOn(sets, Symbol.iterator),
    ];
    m.applyBatch([delta("s7", ["10.0.7.2"])]);
    for (const w of walks) expect(w).not.toHaveBeenCalled();
    expect(m.policy.ipSets.get("s7")?.members.has("10.0.7.2")).toBe(true);
  });
});
