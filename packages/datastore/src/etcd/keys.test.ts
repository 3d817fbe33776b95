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
    // Configuration errors, each its own code: the same credentials will be refused again.
    const denied = mapEtcdError(new Error("7 PERMISSION_DENIED: etcdserver: permission denied"));
    expect([denied.code, denied.retryable]).toEqual(["permission-denied", false]);
    class EtcdAuthenticationFailedError extends Error {}
    const badLogin = mapEtcdError(
      new EtcdAuthenticationFailedError(
        "3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password",
      ),
    );
    expect([badLogin.code, badLogin.retryable]).toEqual(["unauthenticated", false]);
    const noUser = mapEtcdError(new Error("3 INVALID_ARGUMENT: etcdserver: user name is empty"));
    expect([noUser.code, noUser.retryable]).toEqual(["unauthenticated", false]);
    // An expired token is routine: the client authenticates again.
    const token = mapEtcdError(new Error("3 INVALID_ARGUMENT: etcdserver: invalid auth token"));
    expect([token.code, token.retryable]).toEqual(["unavailable", true]);
    // Endpoint credentials are never echoed.
    const echoed = mapEtcdError(new Error("14 UNAVAILABLE: cannot reach https://bob:hunter2@10.0.0.1:2379"));
    expect(echoed.message).not.toContain("hunter2");
  });
});
