import { describe, expect, it } from "vitest";
import {
  DEFAULT_WORKLOAD_INTERFACE_PREFIX,
  isInterfaceNameError,
  isValidInterfaceName,
  workloadInterfaceName,
} from "./index.js";

describe("workloadInterfaceName", () => {
  it("is Calico's name with prefix cali (golden: `echo -n default.nginx | sha1sum`)", () => {
    expect(workloadInterfaceName({ namespace: "default", workload: "nginx" }, "cali")).toBe(
      "calic440f455693",
    );
    expect(workloadInterfaceName({ namespace: "default", workload: "nginx", endpoint: "eth0" }, "cali")).toBe(
      "calic440f455693",
    );
  });

  it("defaults to the mgy prefix and fills 15 characters", () => {
    expect(DEFAULT_WORKLOAD_INTERFACE_PREFIX).toBe("mgy");
    const n = workloadInterfaceName({ namespace: "default", workload: "nginx" });
    expect(n).toBe("mgyc440f455693b");
    expect(n).toHaveLength(15);
    expect(isValidInterfaceName(n)).toBe(true);
  });

  it("gives another endpoint of the same workload its own name", () => {
    const a = workloadInterfaceName({ namespace: "ns", workload: "p" });
    const b = workloadInterfaceName({ namespace: "ns", workload: "p", endpoint: "net1" });
    expect(b).not.toBe(a);
    expect(isValidInterfaceName(b)).toBe(true);
  });

  it("rejects bad prefixes and identities with invalid-interface-name", () => {
    for (const prefix of ["", "BAD", "a-b", "toolongprefix", "1ab"]) {
      let err: unknown;
      try {
        workloadInterfaceName({ namespace: "ns", workload: "p" }, prefix);
      } catch (e) {
        err = e;
      }
      expect(isInterfaceNameError(err)).toBe(true);
      expect((err as { retryable: boolean }).retryable).toBe(false);
    }
    for (const id of [{ namespace: "", workload: "p" }, { namespace: "ns", workload: "" }, null]) {
      expect(() => workloadInterfaceName(id as never)).toThrow(/non-empty/);
    }
  });

  it("validates interface names", () => {
    expect(isValidInterfaceName("eth0")).toBe(true);
    expect(isValidInterfaceName("a".repeat(16))).toBe(false);
    expect(isValidInterfaceName("bad name")).toBe(false);
    expect(isValidInterfaceName("..")).toBe(false);
  });
});
