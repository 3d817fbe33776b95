/**
 * Test helpers of the pipeline tests: an agent context over a memory datastore, and model builders.
 * (Not a test file itself; imported by `*.test.ts` beside it.)
 */
import { API_VERSION, createRecordingLogger, type Logger, type RecordingLogger } from "@margay/api";
import { createMemoryDatastore, type Datastore, type StoredObject } from "@margay/datastore";
import { Registry } from "prom-client";
import { apiValidator } from "../../config/api-validator.js";
import type { AgentConfig } from "../config/types.js";
import type { AgentContext } from "../context.js";
import { type AgentHealth, createHealth } from "../health.js";

/** A complete {@link AgentConfig} with test values; `overrides` replaces top-level fields. */
export function testAgentConfig(overrides: Partial<AgentConfig> = {}): AgentConfig {
  return {
    nodeName: "node-a",
    datastore: { type: "memory", snapshotPath: "/nonexistent/margay-test.json", lockTimeoutMs: 1_000 },
    stateDir: "/nonexistent",
    ipv4: { mode: "autodetect", method: { kind: "first-found" } },
    ipv6: { mode: "none", method: { kind: "first-found" } },
    asNumber: undefined,
    networkingBackend: "bgp",
    defaultPools: { ipv4: undefined, ipv6: undefined },
    interfacePrefixes: ["mgy"],
    mtu: undefined,
    vxlan: { port: 4789, vni: 4096, device: "vxlan.margay" },
    workloadSocket: "/nonexistent/agent.sock",
    health: { enabled: false, host: "127.0.0.1", port: 0 },
    metrics: { enabled: false, host: "127.0.0.1", port: 0, perPeerLabels: false },
    readinessRequiresAllBgpPeers: false,
    statusIntervalMs: 10_000,
    dataplane: {
      driver: "linux",
      remoteCommand: undefined,
      reconcileIntervalMs: 0,
      routeProtocol: 80,
      endpointToHostAction: "Drop",
      nftTable: "margay",
    },
    bgpGracefulRestartSeconds: 120,
    logLevel: "info",
    ...overrides,
  };
}

/** An agent context for tests, with its parts exposed. */
export interface TestContext extends AgentContext {
  readonly health: AgentHealth;
  readonly logger: Logger & RecordingLogger;
  readonly abort: AbortController;
}

/** A context over `datastore` (default: a fresh validating memory datastore). */
export function testContext(
  options: { datastore?: Datastore; config?: Partial<AgentConfig> } = {},
): TestContext {
  const abort = new AbortController();
  return {
    config: testAgentConfig(options.config),
    datastore: options.datastore ?? createMemoryDatastore({ validate: apiValidator }),
    logger: createRecordingLogger(),
    metrics: new Registry(),
    health: createHealth(),
    signal: abort.signal,
    abort,
  };
}

/** A stored object with a spec, as the builders below make. */
export type TestObject = StoredObject & { spec: Record<string, unknown> };

/** An IPPool. */
export function pool(name: string, cidr: string, extra: Record<string, unknown> = {}): TestObject {
  return {
    apiVersion: API_VERSION,
    kind: "IPPool",
    metadata: { name },
    spec: { cidr, blockSize: 26, ...extra },
  };
}

/** A Node with its underlay address (with prefix) and optionally a VXLAN tunnel endpoint. */
export function node(name: string, address: string, vtep?: { address: string; mac: string }): TestObject {
  return {
    apiVersion: API_VERSION,
    kind: "Node",
    metadata: { name },
    spec: {
      bgp: { ipv4Address: address },
      ...(vtep === undefined ? {} : { ipv4VXLANTunnelAddr: vtep.address, vxlanTunnelMACAddr: vtep.mac }),
    },
  };
}

/** A WorkloadEndpoint in `namespace` on `nodeName`. */
export function wep(
  namespace: string,
  name: string,
  nodeName: string,
  ip: string,
  ifname: string,
  labels: Record<string, string> = {},
): TestObject {
  return {
    apiVersion: API_VERSION,
    kind: "WorkloadEndpoint",
    metadata: { name, namespace, labels: { "projectcalico.org/namespace": namespace, ...labels } },
    spec: {
      node: nodeName,
      orchestrator: "k8s",
      pod: name,
      endpoint: "eth0",
      interfaceName: ifname,
      ipNetworks: [`${ip}/32`],
      profiles: [`kns.${namespace}`],
    },
  };
}

/** A GlobalNetworkPolicy allowing TCP `port` in to endpoints matching `selector`. */
export function allowPolicy(name: string, selector: string, port: number): TestObject {
  return {
    apiVersion: API_VERSION,
    kind: "GlobalNetworkPolicy",
    metadata: { name },
    spec: {
      selector,
      types: ["Ingress"],
      ingress: [{ action: "Allow", protocol: "TCP", destination: { ports: [port] } }],
    },
  };
}

/** Polls `check` until it returns true (or throws after `timeoutMs`). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
