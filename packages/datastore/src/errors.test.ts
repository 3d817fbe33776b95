import { describe, expect, it } from "vitest";
import {
  compactedError,
  conflictError,
  DATASTORE_ERROR_BRAND,
  DatastoreError,
  DatastoreErrorCode,
  invalidError,
  isDatastoreError,
  notFoundError,
  permissionDeniedError,
  tlsError,
  unauthenticatedError,
  unavailableError,
} from "./index.js";

describe("DatastoreError", () => {
  it("is retryable exactly for unavailable and conflict", () => {
    const retryable = Object.values(DatastoreErrorCode).filter((c) => new DatastoreError(c, "x").retryable);
    expect(retryable.sort()).toEqual(["conflict", "unavailable"]);
  });

  it("carries code, details and cause; helpers write a message naming the key", () => {
    const cause = new Error("root");
    const e = conflictError(
      { kind: "IPAMBlock", name: "10-0-0-0-26", expectedRevision: "5", actualRevision: "7", opIndex: 1 },
      cause,
    );
    expect(e.code).toBe("conflict");
    expect(e.cause).toBe(cause);
    expect(e.message).toContain("IPAMBlock 10-0-0-0-26");
    expect(e.message).toContain("revision 7, expected 5");
    expect(e.message).toContain("op 1");
    expect(notFoundError({ kind: "Profile", namespace: "ns", name: "p" }).message).toBe(
      "Profile ns/p not found",
    );
    expect(compactedError({ reason: "slow-consumer" }).message).toMatch(/relist/);
    expect(invalidError("bad", { field: "metadata.name" }).details.field).toBe("metadata.name");
    expect(unavailableError("down").retryable).toBe(true);
  });

  it("has non-retryable configuration codes: tls, unauthenticated, permission-denied", () => {
    for (const e of [
      tlsError("handshake", { reason: "unknown-ca" }),
      unauthenticatedError("who?"),
      permissionDeniedError("no"),
    ]) {
      expect(e.retryable).toBe(false);
      expect(isDatastoreError(e, "tls", "unauthenticated", "permission-denied")).toBe(true);
    }
    expect(tlsError("x").code).toBe("tls");
    expect(unauthenticatedError("x").code).toBe("unauthenticated");
    expect(permissionDeniedError("x").code).toBe("permission-denied");
  });

  it("is recognised by brand (across module copies), optionally by code, never by shape alone", () => {
    const e = notFoundError({ kind: "K", name: "n" });
    expect(isDatastoreError(e)).toBe(true);
    expect(isDatastoreError(e, "not-found", "conflict")).toBe(true);
    expect(isDatastoreError(e, "conflict")).toBe(false);
    // What another copy of the package (dual ESM/CJS install) would build: same global brand, other class.
    const foreign = Object.assign(new Error("x"), {
      code: "conflict",
      [Symbol.for("@margay/datastore/error")]: true,
    });
    expect(isDatastoreError(foreign, "conflict")).toBe(true);
    expect(DATASTORE_ERROR_BRAND).toBe(Symbol.for("@margay/datastore/error"));
    expect(isDatastoreError(Object.assign(new Error("x"), { code: "conflict" }))).toBe(false);
    expect(isDatastoreError(null)).toBe(false);
    expect(isDatastoreError("conflict")).toBe(false);
  });
});
