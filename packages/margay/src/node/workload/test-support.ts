/**
 * Fakes and a harness for the workload API's tests: a fake pipeline, a fake plumber that keeps its veths
 * in a map, a memory datastore with pools and a real IPAM, and a raw HTTP helper. Not exported.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  API_VERSION,
  type WorkloadInterfaceIdentity,
  silentLogger,
  workloadInterfaceName,
} from "@margay/api";
import type { WorkloadPlumber, WorkloadResult, WorkloadSpec } from "@margay/dataplane";
import { type Datastore, createMemoryDatastore } from "@margay/datastore";
import { type Ipam, createIpam } from "@margay/ipam";
import { Registry } from "prom-client";
import type { AgentConfig } from "../config/types.js";
import type { AgentContext, ComponentHealth, Health } from "../context.js";
import { type WorkloadApi, type WorkloadApiOptions, startWorkloadApi } from "./server.js";

export const NODE = "node-a";

/** A pipeline whose waitForEndpoint resolves at once unless a test changes `wait`. */
export function fakePipeline() {
  const calls: { key: string; revision: string }[] = [];
  const p = {
    inSync: true,
    calls,
    wait: async (_key: string, _revision: string, _signal?: AbortSignal): Promise<void> => {},
    async waitForEndpoint(key: string, revision: string, options?: { signal?: AbortSignal }) {
      calls.push({ key, revision });
      return p.wait(key, revision, options?.signal);
    },
  };
  return p;
}
export type FakePipeline = ReturnType<typeof fakePipeline>;

/** A plumber keeping "veths" in a map; `fail` makes add throw; counts concurrency per container. */
export function fakePlumber(prefix = "mgy") {
  const links = new Map<string, WorkloadSpec>();
  const removed: string[] = [];
  let active = 0;
  const p = {
    links,
    removed,
    maxActive: 0,
    fail: undefined as Error | undefined,
    /** Awaited inside add (tests block adds on it). */
    gate: async (_spec: WorkloadSpec) => {},
    hostIfName: (e: WorkloadInterfaceIdentity) => workloadInterfaceName(e, prefix),
    async add(spec: WorkloadSpec): Promise<WorkloadResult> {
      active++;
      p.maxActive = Math.max(p.maxActive, active);
      try {
        await p.gate(spec);
        if (p.fail !== undefined) throw p.fail;
        const host = p.hostIfName(spec.endpoint);
        links.set(host, spec);
        return {
          hostIfName: host,
          containerIfName: spec.containerIfName ?? "eth0",
          containerMac: (spec as { mac?: string }).mac ?? "0a:58:00:00:00:01",
          addresses: spec.addresses,
        };
      } finally {
        active--;
      }
    },
    async remove(e: WorkloadInterfaceIdentity) {
      const host = p.hostIfName(e);
      removed.push(host);
      links.delete(host);
    },
    async check(spec: WorkloadSpec): Promise<string[]> {
      const have = links.get(p.hostIfName(spec.endpoint));
      if (have === undefined) return [`host interface ${p.hostIfName(spec.endpoint)} missing`];
      const problems: string[] = [];
      for (const a of spec.addresses) if (!have.addresses.includes(a)) problems.push(`address ${a} missing`);
      return problems;
    },
  } satisfies WorkloadPlumber & Record<string, unknown>;
  return p;
}
export type FakePlumber = ReturnType<typeof fakePlumber>;

export function fakeHealth() {
  const reports = new Map<string, ComponentHealth>();
  const h: Health & { reports: typeof reports } = {
    reports,
    report: (c, v) => void reports.set(c, v),
    remove: (c) => void reports.delete(c),
    snapshot: () => ({
      live: [...reports.values()].every((r) => r.live),
      ready: [...reports.values()].every((r) => r.ready),
      components: Object.fromEntries(reports),
    }),
  };
  return h;
}

export const IPV4_POOL = "10.70.0.0/24";
export const IPV6_POOL = "fd70::/120";

export async function addPool(datastore: Datastore, name: string, spec: Record<string, unknown>) {
  await datastore.create({ apiVersion: API_VERSION, kind: "IPPool", metadata: { name }, spec });
}

/** Everything a workload API test needs, on a fresh temp socket. */
export interface Harness {
  readonly dir: string;
  readonly socketPath: string;
  readonly datastore: Datastore;
  readonly ipam: Ipam;
  readonly pipeline: FakePipeline;
  readonly plumber: FakePlumber;
  readonly health: ReturnType<typeof fakeHealth>;
  readonly metrics: Registry;
  readonly api: WorkloadApi;
  readonly stop: AbortController;
  /** Addresses allocated in all pools. */
  inUse(): Promise<number>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly datastore?: Datastore;
  readonly pools?: "v4" | "dual" | "none";
  readonly api?: Partial<WorkloadApiOptions>;
  readonly socketPath?: string;
  /** Agent configuration fields over the fake context's. */
  readonly config?: Partial<AgentConfig>;
}

export function fakeContext(
  datastore: Datastore,
  socketPath: string,
  extra: { health?: Health; metrics?: Registry; signal?: AbortSignal; config?: Partial<AgentConfig> } = {},
): AgentContext {
  return {
    config: { nodeName: NODE, workloadSocket: socketPath, ...extra.config } as unknown as AgentConfig,
    datastore,
    logger: silentLogger,
    metrics: extra.metrics ?? new Registry(),
    health: extra.health ?? fakeHealth(),
    signal: extra.signal ?? new AbortController().signal,
  };
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), "mgy-wl-"));
  const socketPath = opts.socketPath ?? join(dir, "run", "agent.sock");
  const datastore = opts.datastore ?? createMemoryDatastore();
  const pools = opts.pools ?? "v4";
  if (pools !== "none") await addPool(datastore, "pool4", { cidr: IPV4_POOL, blockSize: 28 });
  if (pools === "dual") await addPool(datastore, "pool6", { cidr: IPV6_POOL, blockSize: 124 });
  const ipam = createIpam({ datastore });
  const pipeline = fakePipeline();
  const plumber = fakePlumber();
  const health = fakeHealth();
  const metrics = new Registry();
  const stop = new AbortController();
  const ctx = fakeContext(datastore, socketPath, {
    health,
    metrics,
    signal: stop.signal,
    ...(opts.config === undefined ? {} : { config: opts.config }),
  });
  const api = await startWorkloadApi(ctx, {
    pipeline,
    ipam,
    plumber,
    addresses: { ipv4: "10.0.0.1/24", ipv6: undefined, interface: "eth0", interfaceMtu: 1500 },
    mtu: 1450,
    netnsExists: async (p) => !p.includes("missing"),
    gcGracePeriodMs: 0,
    ...opts.api,
  });
  return {
    dir,
    socketPath,
    datastore,
    ipam,
    pipeline,
    plumber,
    health,
    metrics,
    api,
    stop,
    async inUse() {
      const u = await ipam.utilisation();
      return u.reduce((n, p) => n + p.inUse, 0);
    },
    async close() {
      await api.close();
      await ipam.close();
      await datastore.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A raw HTTP exchange on the socket (for malformed requests the client would never send). */
export function raw(
  socketPath: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer },
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({
      socketPath,
      method: options.method ?? "POST",
      path: options.path,
      headers: {
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
        ...options.headers,
      },
    });
    req.once("error", reject);
    req.once("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
        } catch {
          resolve({ status: res.statusCode ?? 0, body: { raw: text } });
        }
      });
    });
    req.end(options.body);
  });
}

/** A valid add request for pod `pod` (container `c-<pod>`). */
export function addRequest(pod: string, extra: Record<string, unknown> = {}) {
  return {
    containerId: `c-${pod}`,
    ifName: "eth0",
    netns: `/var/run/netns/${pod}`,
    namespace: "default",
    pod,
    ...extra,
  };
}
