import type { WorkloadEndpoint } from "@margay/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, addRequest, raw, startHarness } from "./test-support.js";

/**
 * Requests a well-behaved client never sends, each with the typed error it must get. After the whole
 * table nothing may be allocated, plumbed, written or waited for.
 */
interface Case {
  readonly name: string;
  readonly status: number;
  readonly code: string;
  /** `details.field` expected, when the error names a field. */
  readonly field?: string;
  readonly path?: string;
  readonly method?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

const good = addRequest("p");
const add = (patch: Record<string, unknown>) => JSON.stringify({ ...good, ...patch });
const without = (key: string) => {
  const o: Record<string, unknown> = { ...good };
  delete o[key];
  return JSON.stringify(o);
};

const CASES: readonly Case[] = [
  { name: "not JSON", status: 400, code: "invalid-json", body: "{containerId:" },
  { name: "empty body", status: 400, code: "invalid-json", body: "" },
  { name: "a JSON array", status: 400, code: "invalid-json", body: "[]" },
  { name: "a JSON string", status: 400, code: "invalid-json", body: '"add"' },
  { name: "JSON null", status: 400, code: "invalid-json", body: "null" },
  {
    name: "oversized body",
    status: 413,
    code: "body-too-large",
    body: add({ labels: { a: "x".repeat(63) }, args: { X: "y".repeat(70 * 1024) } }),
  },
  {
    name: "unknown field",
    status: 400,
    code: "unknown-field",
    field: "podName",
    body: add({ podName: "p" }),
  },
  {
    name: "missing containerId",
    status: 400,
    code: "missing-field",
    field: "containerId",
    body: without("containerId"),
  },
  {
    name: "null containerId",
    status: 400,
    code: "missing-field",
    field: "containerId",
    body: add({ containerId: null }),
  },
  { name: "missing netns", status: 400, code: "missing-field", field: "netns", body: without("netns") },
  { name: "missing ifName", status: 400, code: "missing-field", field: "ifName", body: without("ifName") },
  {
    name: "containerId with a slash",
    status: 400,
    code: "invalid-field",
    field: "containerId",
    body: add({ containerId: "a/b" }),
  },
  {
    name: "containerId too long",
    status: 400,
    code: "invalid-field",
    field: "containerId",
    body: add({ containerId: "a".repeat(129) }),
  },
  {
    name: "containerId a number",
    status: 400,
    code: "invalid-field",
    field: "containerId",
    body: add({ containerId: 42 }),
  },
  {
    name: "ifName of 16 bytes",
    status: 400,
    code: "invalid-field",
    field: "ifName",
    body: add({ ifName: "e".repeat(16) }),
  },
  { name: "ifName '.'", status: 400, code: "invalid-field", field: "ifName", body: add({ ifName: "." }) },
  {
    name: "ifName with a colon",
    status: 400,
    code: "invalid-field",
    field: "ifName",
    body: add({ ifName: "eth0:1" }),
  },
  {
    name: "relative netns path",
    status: 400,
    code: "invalid-field",
    field: "netns",
    body: add({ netns: "var/run/netns/x" }),
  },
  {
    name: "netns with '..'",
    status: 400,
    code: "invalid-field",
    field: "netns",
    body: add({ netns: "/var/run/netns/../../etc/passwd" }),
  },
  {
    name: "netns with shell characters",
    status: 400,
    code: "invalid-field",
    field: "netns",
    body: add({ netns: "/tmp/x; reboot" }),
  },
  {
    name: "netns that does not exist",
    status: 400,
    code: "netns-not-found",
    field: "netns",
    body: add({ netns: "/var/run/netns/missing" }),
  },
  {
    name: "namespace in upper case",
    status: 400,
    code: "invalid-field",
    field: "namespace",
    body: add({ namespace: "Prod" }),
  },
  {
    name: "pod name with an underscore",
    status: 400,
    code: "invalid-field",
    field: "pod",
    body: add({ pod: "my_pod" }),
  },
  {
    name: "pod and workload both",
    status: 400,
    code: "invalid-field",
    field: "workload",
    body: add({ workload: "w" }),
  },
  {
    name: "endpoint name longer than the datastore allows",
    status: 400,
    code: "invalid-field",
    field: "pod",
    body: add({ pod: `${"a".repeat(62)}.${"b".repeat(62)}.${"c".repeat(62)}.${"d".repeat(62)}` }),
  },
  {
    name: "endpoint with a space",
    status: 400,
    code: "invalid-field",
    field: "endpoint",
    body: add({ endpoint: "eth 0" }),
  },
  {
    name: "labels not an object",
    status: 400,
    code: "invalid-field",
    field: "labels",
    body: add({ labels: ["a"] }),
  },
  {
    name: "label value a number",
    status: 400,
    code: "invalid-field",
    field: "labels.app",
    body: add({ labels: { app: 1 } }),
  },
  {
    name: "label key malformed",
    status: 400,
    code: "invalid-field",
    field: "labels.-bad",
    body: add({ labels: { "-bad": "x" } }),
  },
  {
    name: "label the agent sets itself",
    status: 400,
    code: "invalid-field",
    field: "labels.projectcalico.org/namespace",
    body: add({ labels: { "projectcalico.org/namespace": "kube-system" } }),
  },
  {
    name: "ips not an array",
    status: 400,
    code: "invalid-field",
    field: "ips",
    body: add({ ips: "10.70.0.5" }),
  },
  {
    name: "ips not an address",
    status: 400,
    code: "invalid-field",
    field: "ips[0]",
    body: add({ ips: ["10.70.0.500"] }),
  },
  {
    name: "ips with a prefix length",
    status: 400,
    code: "invalid-field",
    field: "ips[0]",
    body: add({ ips: ["10.70.0.5/32"] }),
  },
  {
    name: "two IPv4 addresses",
    status: 400,
    code: "invalid-field",
    field: "ips[1]",
    body: add({ ips: ["10.70.0.5", "10.70.0.6"] }),
  },
  {
    name: "pool with a space",
    status: 400,
    code: "invalid-field",
    field: "pools[0]",
    body: add({ pools: ["my pool"] }),
  },
  {
    name: "multicast mac",
    status: 400,
    code: "invalid-field",
    field: "mac",
    body: add({ mac: "01:00:5e:00:00:01" }),
  },
  {
    name: "malformed mac",
    status: 400,
    code: "invalid-field",
    field: "mac",
    body: add({ mac: "02-00-00-00-00-01" }),
  },
  { name: "mtu below 68", status: 400, code: "invalid-field", field: "mtu", body: add({ mtu: 10 }) },
  { name: "mtu a string", status: 400, code: "invalid-field", field: "mtu", body: add({ mtu: "1500" }) },
  { name: "mtu fractional", status: 400, code: "invalid-field", field: "mtu", body: add({ mtu: 1400.5 }) },
  {
    name: "arg value not a string",
    status: 400,
    code: "invalid-field",
    field: "args.K8S_POD_UID",
    body: add({ args: { K8S_POD_UID: 7 } }),
  },
  {
    name: "wrong content type",
    status: 415,
    code: "unsupported-media-type",
    headers: { "content-type": "text/plain" },
    body: JSON.stringify(good),
  },
  { name: "GET on add", status: 405, code: "method-not-allowed", method: "GET" },
  {
    name: "another protocol version",
    status: 404,
    code: "unknown-endpoint",
    path: "/v2/workloads/add",
    body: JSON.stringify(good),
  },
  {
    name: "unknown verb",
    status: 404,
    code: "unknown-endpoint",
    path: "/v1/workloads/update",
    body: JSON.stringify(good),
  },
  {
    name: "bad timeout header",
    status: 400,
    code: "invalid-field",
    field: "header:margay-timeout-ms",
    headers: { "margay-timeout-ms": "soon" },
    body: JSON.stringify(good),
  },
  {
    name: "del with an unknown field",
    status: 400,
    code: "unknown-field",
    field: "ips",
    path: "/v1/workloads/del",
    body: JSON.stringify({ containerId: "c", ifName: "eth0", ips: [] }),
  },
  {
    name: "gc without its list",
    status: 400,
    code: "missing-field",
    field: "validAttachments",
    path: "/v1/gc",
    body: "{}",
  },
  {
    name: "gc attachment with an unknown field",
    status: 400,
    code: "unknown-field",
    field: "validAttachments[0].netns",
    path: "/v1/gc",
    body: JSON.stringify({ validAttachments: [{ containerId: "c", ifName: "eth0", netns: "/x" }] }),
  },
];

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});

describe("workload API: malformed requests", () => {
  it("has at least 20 cases", () => {
    expect(CASES.length).toBeGreaterThanOrEqual(20);
  });

  it.each(CASES)("$name → $status $code", async (c) => {
    const r = await raw(h.socketPath, {
      method: c.method ?? "POST",
      path: c.path ?? "/v1/workloads/add",
      ...(c.headers === undefined ? {} : { headers: c.headers }),
      ...(c.body === undefined ? {} : { body: c.body }),
    });
    expect(r.status).toBe(c.status);
    expect(r.body).toMatchObject({ code: c.code, retryable: false });
    expect(typeof r.body.message).toBe("string");
    if (c.field !== undefined) expect(r.body.details).toMatchObject({ field: c.field });
  });

  it("left nothing allocated, plumbed, written or waited for", async () => {
    expect(await h.inUse()).toBe(0);
    expect((await h.datastore.list<WorkloadEndpoint>("WorkloadEndpoint")).items).toEqual([]);
    expect(h.plumber.links.size).toBe(0);
    expect(h.plumber.maxActive).toBe(0);
    expect(h.pipeline.calls).toEqual([]);
  });

  it("still serves a good request after all that", async () => {
    const r = await raw(h.socketPath, { path: "/v1/workloads/add", body: JSON.stringify(good) });
    expect(r.status).toBe(200);
  });
});
