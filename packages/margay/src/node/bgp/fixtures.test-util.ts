/**
 * Test fixtures of the BGP part: a complete {@link AgentConfig}, an {@link AgentContext} over a given
 * datastore, a recording {@link Health}, and a fake {@link DataplanePipeline} whose route side the test
 * drives and whose `learned` input it records.
 *
 * @packageDocumentation
 */
import { type Logger, silentLogger } from "@margay/api";
import { type AddressInfo, createServer } from "node:net";
import type { RouteSideUpdate } from "@margay/dataplane-contract";
import type { Datastore } from "@margay/datastore";
import type { RoutingChange } from "@margay/routing";
import { Registry } from "prom-client";
import type { AgentConfig } from "../config/types.js";
import type { AgentContext, ComponentHealth, DataplanePipeline, Health } from "../context.js";

/** A complete agent configuration for tests (memory datastore, BGP backend). */
export function testConfig(nodeName: string, overrides: Partial<AgentConfig> = {}): AgentConfig {
  const pool = (name: string, cidr: string, blockSize: number) => ({
    name,
    cidr,
    blockSize,
    ipipMode: "Never" as const,
    vxlanMode: "Never" as const,
    natOutgoing: false,
    nodeSelector: "all()",
  });
  return {
    nodeName,
    datastore: { type: "memory", snapshotPath: "/nonexistent/margay.snapshot", lockTimeoutMs: 1000 },
    stateDir: "/nonexistent",
    ipv4: { mode: "autodetect", method: { kind: "first-found" } },
    ipv6: { mode: "none", method: { kind: "first-found" } },
    asNumber: undefined,
    networkingBackend: "bgp",
    defaultPools: { ipv4: pool("default-ipv4-ippool", "10.65.0.0/16", 26), ipv6: undefined },
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
      reconcileIntervalMs: 180_000,
      routeProtocol: 80,
      endpointToHostAction: "Drop",
      nftTable: "margay",
    },
    bgpGracefulRestartSeconds: 120,
    logLevel: "info",
    ...overrides,
  };
}

/** A {@link Health} that keeps the last report of each component. */
export class RecordingHealth implements Health {
  readonly components = new Map<string, ComponentHealth>();
  report(component: string, health: ComponentHealth): void {
    this.components.set(component, health);
  }
  remove(component: string): void {
    this.components.delete(component);
  }
  snapshot() {
    const all = [...this.components.values()];
    return {
      live: all.every((c) => c.live),
      ready: all.every((c) => c.ready),
      components: Object.fromEntries(this.components),
    };
  }
  get(component = "bgp"): ComponentHealth | undefined {
    return this.components.get(component);
  }
}

/** An agent context over `datastore`, with its own registry, health and abort controller. */
export function testContext(
  datastore: Datastore,
  config: AgentConfig,
  logger: Logger = silentLogger,
): { ctx: AgentContext; health: RecordingHealth; metrics: Registry; abort: AbortController } {
  const health = new RecordingHealth();
  const metrics = new Registry();
  const abort = new AbortController();
  return {
    ctx: { config, datastore, logger, metrics, health, signal: abort.signal },
    health,
    metrics,
    abort,
  };
}

/**
 * A pipeline whose route side the test drives with {@link FakePipeline.apply} (the first call marks it in
 * sync) and whose learned routes it reads in {@link FakePipeline.learnedRoutes}.
 */
export class FakePipeline implements DataplanePipeline {
  inSync = false;
  readonly #listeners = new Set<(u: readonly RouteSideUpdate[]) => void>();
  readonly #routes = new Map<string, RouteSideUpdate>();
  /** Every `learned` call, in order. */
  readonly learnedCalls: RoutingChange[][] = [];
  /** Current learned routes: `prefix` → source → next hops. */
  readonly learnedRoutes = new Map<string, Map<string, readonly string[]>>();

  apply(updates: readonly RouteSideUpdate[]): void {
    for (const u of updates) {
      if (u.kind === "route-update") this.#routes.set(u.dst, u);
      else if (u.kind === "route-remove") this.#routes.delete(u.dst);
    }
    this.inSync = true;
    for (const l of this.#listeners) l(updates);
  }
  /** A resync: the programmed set is replaced and listeners get the full new set (no removals). */
  resync(routes: readonly RouteSideUpdate[]): void {
    this.#routes.clear();
    for (const u of routes) if (u.kind === "route-update") this.#routes.set(u.dst, u);
    this.inSync = true;
    for (const l of this.#listeners) l(routes);
  }
  waitForEndpoint(): Promise<void> {
    return Promise.resolve();
  }
  learned(changes: readonly RoutingChange[]): void {
    this.learnedCalls.push([...changes]);
    for (const c of changes) {
      if (c.kind !== "learned") continue;
      const bySource = this.learnedRoutes.get(c.prefix) ?? new Map<string, readonly string[]>();
      if (c.nextHops === null) bySource.delete(c.source);
      else bySource.set(c.source, c.nextHops);
      if (bySource.size === 0) this.learnedRoutes.delete(c.prefix);
      else this.learnedRoutes.set(c.prefix, bySource);
    }
  }
  onRoutes(listener: (updates: readonly RouteSideUpdate[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  routes(): ReadonlyMap<string, RouteSideUpdate> {
    return this.#routes;
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  get listenerCount(): number {
    return this.#listeners.size;
  }
}

/** A TCP port free on `host` right now (listen on 0, read it, close). */
export async function freePort(host: string): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen({ host, port: 0, exclusive: true }, () => resolve());
  });
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** Polls `f` until it returns something other than undefined/false (20 s by default). */
export async function eventually<T>(f: () => T | undefined | false, what: string, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
