/**
 * The operations endpoints: `/livez` and `/readyz` (the health aggregate; a not-ready answer names each
 * failing component and why) and `/metrics` (the agent's prom-client registry). Health and metrics get
 * one HTTP server each, or one together when configured on the same host and port.
 *
 * @packageDocumentation
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "@margay/api";
import type { Registry } from "prom-client";
import { AgentError, AgentErrorCode, errorCode } from "./agent-error.js";
import type { AgentConfig } from "./config/types.js";
import type { Health } from "./context.js";

/** A bound endpoint. */
export interface OpsEndpoint {
  readonly host: string;
  /** The bound port (the configured one, or the kernel's choice for port 0). */
  readonly port: number;
}

/** The running servers. */
export interface OpsServer {
  /** Where `/livez` and `/readyz` are served; undefined when health is disabled. */
  readonly health: OpsEndpoint | undefined;
  /** Where `/metrics` is served; undefined when metrics are disabled. */
  readonly metrics: OpsEndpoint | undefined;
  /** Stops listening and ends open connections. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** What {@link startOpsServer} reads (an `AgentContext` has all of it). */
export interface OpsServerContext {
  readonly config: Pick<AgentConfig, "health" | "metrics">;
  readonly health: Health;
  readonly metrics: Registry;
  readonly logger: Logger;
}

/** The body of `/readyz` and `/livez`. */
export interface HealthBody {
  /** `ok` or `failed`. */
  readonly status: "ok" | "failed";
  readonly live: boolean;
  readonly ready: boolean;
  /** One line per failing component: `bgp: BGP peer 10.0.0.5: TCP 179 refused`. */
  readonly reasons: string[];
  readonly components: { name: string; live: boolean; ready: boolean; reason?: string }[];
}

/** Builds the `/readyz` (`probe: "ready"`) or `/livez` body from a health aggregate. */
export function healthBody(health: Health, probe: "ready" | "live"): HealthBody {
  const s = health.snapshot();
  const components = Object.entries(s.components).map(([name, c]) => ({
    name,
    live: c.live,
    ready: c.ready,
    ...(c.reason === undefined ? {} : { reason: c.reason }),
  }));
  const failing = components.filter((c) => !c.live || (probe === "ready" && !c.ready));
  const reasons = failing.map((c) => `${c.name}: ${c.reason ?? (c.live ? "not ready" : "not live")}`);
  const ok = probe === "ready" ? s.ready : s.live;
  return { status: ok ? "ok" : "failed", live: s.live, ready: s.ready, reasons, components };
}

type Route = "health" | "metrics";

function handler(ctx: OpsServerContext, routes: ReadonlySet<Route>) {
  const log = ctx.logger;
  return (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    const known =
      ((path === "/livez" || path === "/readyz") && routes.has("health")) ||
      (path === "/metrics" && routes.has("metrics"));
    if (!known) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" });
      res.end("method not allowed\n");
      return;
    }
    const head = req.method === "HEAD";
    if (path === "/metrics") {
      ctx.metrics.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": ctx.metrics.contentType });
          res.end(head ? undefined : text);
        },
        (e: unknown) => {
          log.warn({ err: e }, "metrics collection failed");
          res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
          res.end(head ? undefined : "metrics collection failed\n");
        },
      );
      return;
    }
    const body = healthBody(ctx.health, path === "/readyz" ? "ready" : "live");
    res.writeHead(body.status === "ok" ? 200 : 503, {
      "content-type": "application/json",
      "cache-control": "no-store",
    });
    res.end(head ? undefined : `${JSON.stringify(body)}\n`);
  };
}

function listen(server: Server, host: string, port: number): Promise<OpsEndpoint> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => {
      server.off("listening", onListening);
      reject(
        new AgentError(
          AgentErrorCode.OpsListen,
          `cannot listen on ${host}:${port}: ${errorCode(e) ?? e.message}`,
          { host, port, causeCode: errorCode(e) },
          { cause: e, retryable: errorCode(e) === "EADDRINUSE" },
        ),
      );
    };
    const onListening = () => {
      server.off("error", onError);
      resolve({ host, port: (server.address() as AddressInfo).port });
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ host, port });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Starts the endpoints `config.health` and `config.metrics` enable. Resolves once every server listens;
 * rejects with `AgentError` `ops-listen-failed` (the servers already started are closed).
 */
export async function startOpsServer(ctx: OpsServerContext): Promise<OpsServer> {
  const { health, metrics } = ctx.config;
  const plan = new Map<string, { host: string; port: number; routes: Set<Route> }>();
  const add = (host: string, port: number, route: Route) => {
    // Port 0 asks for two distinct ephemeral ports: never merge those.
    const key = port === 0 ? `${route}|${host}|0` : `${host}|${port}`;
    const entry = plan.get(key) ?? { host, port, routes: new Set<Route>() };
    entry.routes.add(route);
    plan.set(key, entry);
  };
  if (health.enabled) add(health.host, health.port, "health");
  if (metrics.enabled) add(metrics.host, metrics.port, "metrics");

  const servers: Server[] = [];
  let healthAt: OpsEndpoint | undefined;
  let metricsAt: OpsEndpoint | undefined;
  try {
    for (const { host, port, routes } of plan.values()) {
      const server = createServer(handler(ctx, routes));
      servers.push(server);
      const at = await listen(server, host, port);
      if (routes.has("health")) healthAt = at;
      if (routes.has("metrics")) metricsAt = at;
      ctx.logger.info({ host: at.host, port: at.port, serves: [...routes] }, "operations endpoint listening");
    }
  } catch (e) {
    await Promise.all(servers.map(closeServer));
    throw e;
  }
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= Promise.all(servers.map(closeServer)).then(() => undefined);
    return closing;
  };
  return { health: healthAt, metrics: metricsAt, close, [Symbol.asyncDispose]: close };
}
