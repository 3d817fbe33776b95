import { readFile } from "node:fs/promises";
import { CniErrorCode } from "@margay/cni";
import { describe, expect, it } from "vitest";
import { MargayIpamErrorCode } from "../../cni/ipam/plugin.js";
import { parseReply } from "./client.js";
import {
  WORKLOAD_ERROR_TABLE,
  WorkloadApiError,
  WorkloadCniCode,
  WorkloadErrorCode,
  cniStatusError,
  isWorkloadApiError,
  toCniError,
} from "./errors.js";

const e = (code: WorkloadErrorCode, details: Record<string, unknown> = {}) =>
  new WorkloadApiError(code, `${code} happened`, { details });

describe("workload API errors", () => {
  it("every code has a status and retryability; codes are kebab-case", () => {
    for (const code of Object.values(WorkloadErrorCode)) {
      expect(code).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(WORKLOAD_ERROR_TABLE[code].status).toBeGreaterThanOrEqual(400);
    }
  });

  it("a 4xx is never retryable and a 503 always is", () => {
    for (const [code, info] of Object.entries(WORKLOAD_ERROR_TABLE)) {
      if (info.status < 500) expect([code, info.retryable]).toEqual([code, false]);
      if (info.status === 503) expect([code, info.retryable]).toEqual([code, true]);
    }
  });

  it("guards by brand, not instanceof", () => {
    const err = e(WorkloadErrorCode.NotReady);
    expect(isWorkloadApiError(err)).toBe(true);
    expect(isWorkloadApiError(err, WorkloadErrorCode.NotReady)).toBe(true);
    expect(isWorkloadApiError(err, WorkloadErrorCode.Internal)).toBe(false);
    expect(isWorkloadApiError({ code: "not-ready", message: "x", retryable: true, details: {} })).toBe(false);
    expect(isWorkloadApiError(new Error("x"))).toBe(false);
    expect(err.toBody()).toEqual({
      code: "not-ready",
      message: "not-ready happened",
      retryable: true,
      details: {},
    });
  });
});

describe("toCniError (the plugin's mapping)", () => {
  it("uses the specification's numbers and margay-ipam's own for the same causes", () => {
    expect(WorkloadCniCode.TryAgainLater).toBe(CniErrorCode.TryAgainLater);
    expect(WorkloadCniCode.PluginNotAvailable).toBe(CniErrorCode.PluginNotAvailable);
    expect(WorkloadCniCode.InvalidEnvironmentVariables).toBe(CniErrorCode.InvalidEnvironmentVariables);
    expect(WorkloadCniCode.InvalidNetworkConfig).toBe(CniErrorCode.InvalidNetworkConfig);
    expect(WorkloadCniCode.PoolExhausted).toBe(MargayIpamErrorCode.PoolExhausted);
    expect(WorkloadCniCode.AllocationMissing).toBe(MargayIpamErrorCode.AllocationMissing);
    expect(WorkloadCniCode.IpamFailure).toBe(MargayIpamErrorCode.IpamFailure);
    expect(WorkloadCniCode.RequestedAddressUnavailable).toBe(MargayIpamErrorCode.RequestedAddressUnavailable);
  });

  it.each([
    [WorkloadErrorCode.AgentUnavailable, "add", 11],
    [WorkloadErrorCode.AgentUnavailable, "status", 50],
    [WorkloadErrorCode.NotReady, "add", 11],
    [WorkloadErrorCode.NotReady, "status", 50],
    [WorkloadErrorCode.ShuttingDown, "del", 11],
    [WorkloadErrorCode.DeadlineExceeded, "add", 11],
    [WorkloadErrorCode.DatastoreUnavailable, "add", 11],
    [WorkloadErrorCode.PoolExhausted, "add", 110],
    [WorkloadErrorCode.HostBlockLimit, "add", 110],
    [WorkloadErrorCode.AddressUnavailable, "add", 140],
    [WorkloadErrorCode.NoPools, "add", 130],
    [WorkloadErrorCode.IpamFailed, "add", 130],
    [WorkloadErrorCode.PlumbingFailed, "add", 150],
    [WorkloadErrorCode.EndpointWriteFailed, "add", 160],
    [WorkloadErrorCode.CheckFailed, "check", 170],
    [WorkloadErrorCode.UnknownField, "add", 180],
    [WorkloadErrorCode.ProtocolError, "add", 180],
    [WorkloadErrorCode.NetnsNotFound, "add", 4],
    [WorkloadErrorCode.Internal, "add", 999],
  ] as const)("%s on %s is CNI code %i", (code, verb, cni) => {
    const out = toCniError(e(code), verb);
    expect(out.code).toBe(cni);
    expect(JSON.parse(out.details!)).toMatchObject({ code });
  });

  it("a field error is code 4 for what the runtime's environment gave, 7 for the network configuration", () => {
    for (const field of ["containerId", "ifName", "netns", "namespace", "pod", "args.K8S_POD_UID"])
      expect(toCniError(e(WorkloadErrorCode.InvalidField, { field })).code).toBe(4);
    for (const field of ["mtu", "ips[0]", "pools[1]", "mac", "labels.app"])
      expect(toCniError(e(WorkloadErrorCode.InvalidField, { field })).code).toBe(7);
  });

  it("a status reply that is not ready is STATUS code 50 with the agent's reason", () => {
    const base = { apiVersion: "v1", node: "n", mtu: 1450, inFlight: 0 } as const;
    expect(cniStatusError({ ...base, ready: true })).toBeUndefined();
    expect(cniStatusError({ ...base, ready: false, reason: "dataplane not in sync" })).toEqual({
      code: 50,
      msg: "margay-node agent not ready",
      details: "dataplane not in sync",
    });
  });

  it("anything that is not a workload API error is internal, with its message", () => {
    expect(toCniError(new Error("boom"))).toEqual({
      code: 999,
      msg: "workload API call failed",
      details: "boom",
    });
  });
});

describe("client module weight", () => {
  it("imports nothing but node:net (no node:http: the client speaks its one HTTP exchange itself) and the protocol's own light modules", async () => {
    const dir = new URL(".", import.meta.url);
    const imports = async (file: string) =>
      [...(await readFile(new URL(file, dir), "utf8")).matchAll(/^import[^;]*?from "([^"]+)";/gms)].map(
        (m) => m[1],
      );
    expect(await imports("client.ts")).toEqual(["node:net", "./errors.js", "./protocol.js"]);
    expect(await imports("errors.ts")).toEqual(["./protocol.js"]);
    expect(await imports("protocol.ts")).toEqual([]);
    expect(await imports("spool.ts")).toEqual(["node:fs/promises", "node:path", "./protocol.js"]);
  });
});

describe("the client's HTTP/1.1 reply reader", () => {
  const reply = (head: string, body: string) => Buffer.from(`${head}\r\n\r\n${body}`);
  it("reads status and body by content-length or chunks, and names a reply cut short", () => {
    expect(parseReply(reply("HTTP/1.1 200 OK\r\nContent-Length: 2", "{}xx"))).toEqual({
      status: 200,
      body: Buffer.from("{}"),
    });
    expect(
      parseReply(
        reply("HTTP/1.1 409 Conflict\r\ntransfer-encoding: chunked", '3\r\n{"a\r\n2\r\n":\r\n0\r\n\r\n'),
      ),
    ).toEqual({ status: 409, body: Buffer.from('{"a":') });
    expect(parseReply(reply("HTTP/1.1 200 OK\r\nContent-Length: 10", "{}"))).toBe(
      "body shorter than content-length 10",
    );
    expect(parseReply(Buffer.from("HTTP/1.1 200 OK\r\nContent-Le"))).toBe("no complete header");
    expect(parseReply(reply("SSH-2.0", ""))).toBe("not an HTTP/1.1 status line");
    expect(parseReply(reply("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked", "5\r\nab"))).toBe(
      "chunked body cut short",
    );
  });
});
