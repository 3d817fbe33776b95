import { describe, expect, it } from "vitest";
import { mapEtcdError } from "./etcd-errors.js";
import { objectKey, parseObjectKey, rangePrefix } from "./keys.js";

describe("etcd key layout", () => {
  const p = "/margay/v1";
  it("puts cluster-scoped objects under _cluster and round-trips keys", () => {
    expect(objectKey(p, { kind: "IPPool", name: "default" })).toBe("/margay/v1/IPPool/_cluster/default");
    expect(objectKey(p, { kind: "WorkloadEndpoint", namespace: "ns", name: "a.b:c" })).toBe(
      "/margay/v1/WorkloadEndpoint/ns/a.b:c",
    );
    for (const k of [
      { kind: "IPPool", name: "default" },
      { kind: "WorkloadEndpoint", namespace: "ns", name: "x" },
    ]) {
      expect(parseObjectKey(p, objectKey(p, k))).toEqual(k);
    }
    expect(parseObjectKey(p, "/margay/v1/IPPool/x")).toBeUndefined();
    expect(parseObjectKey(p, "/other/IPPool/_cluster/x")).toBeUndefined();
  });

  it("range prefixes end at a segment boundary", () => {
    expect(rangePrefix(p, "IPPool")).toBe("/margay/v1/IPPool/");
    expect(rangePrefix(p, "WorkloadEndpoint", "ns")).toBe("/margay/v1/WorkloadEndpoint/ns/");
    expect(rangePrefix(p, "WorkloadEndpoint", "ns", "pod-")).toBe("/margay/v1/WorkloadEndpoint/ns/pod-");
  });
});

describe("etcd error mapping", () => {
  it("maps compaction, refusals, closed clients and connection failures", () => {
    expect(mapEtcdError(new Error("etcdserver: mvcc: required revision has been compacted")).code).toBe(
      "compacted",
    );
    class GRPCInvalidArgumentError extends Error {}
    expect(mapEtcdError(new GRPCInvalidArgumentError("etcdserver: request is too large")).code).toBe(
      "invalid",
    );
    class ClientClosedError extends Error {}
    expect(mapEtcdError(new ClientClosedError("closed")).code).toBe("closed");
    const down = mapEtcdError(new Error("14 UNAVAILABLE: No connection established"), { kind: "K" });
    expect(down.code).toBe("unavailable");
    expect(down.retryable).toBe(true);
    expect(down.details).toMatchObject({ kind: "K", backend: "etcd" });
    const auth = mapEtcdError(new Error("etcdserver: permission denied"));
    expect(auth.details.reason).toBe("auth");
    // The same credentials will be refused again: not worth a retry.
    expect(auth.retryable).toBe(false);
  });
});
