import { afterEach, describe, expect, it, vi } from "vitest";

describe("examples/quick-start.ts (the README example)", () => {
  afterEach(() => vi.restoreAllMocks());

  it("runs and prints what the README says", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      lines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
    });
    await import("../examples/quick-start.js");
    expect(lines[0]).toBe("document 0: IPPool/pool-a (converted from IPPool)");
    expect(lines[1]).toBe("document 1: GlobalNetworkPolicy/allow-dns");
    expect(lines).toContain(
      'invalid: spec.ingress[0].destination.ports[1]: invalid port "9000:8000": expected 1..65535, "min:max" with min <= max, or a port name',
    );
    expect(lines).toContain(
      '(app == "web" && env not in {"dev", "test"}) s:0qQgn12jrln8swBs09lfvEo1bBSCICrg6avEtw',
    );
    expect(lines).toContain("matches {app: web}: true");
    expect(lines.at(-1)).toMatch(/^document 0, line 1: Calico kind "BGPFilter" is not supported/);
  });
});
