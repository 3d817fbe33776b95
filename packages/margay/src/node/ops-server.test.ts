import { createServer } from "node:net";
import { silentLogger } from "@margay/api";
import { Counter } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { isAgentError } from "./agent-error.js";
import { createHealth } from "./health.js";
import { createAgentMetrics } from "./metrics.js";
import { type OpsServer, startOpsServer } from "./ops-server.js";

const open: OpsServer[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

function config(health: [boolean, number], metrics: [boolean, number]) {
  return {
    health: { enabled: health[0], host: "127.0.0.1", port: health[1] },
    metrics: { enabled: metrics[0], host: "127.0.0.1", port: metrics[1], perPeerLabels: false },
  };
}

async function start(health: [boolean, number], metrics: [boolean, number]) {
  const h = createHealth();
  const registry = createAgentMetrics();
  const server = await startOpsServer({
    config: config(health, metrics),
    health: h,
    metrics: registry,
    logger: silentLogger,
  });
  open.push(server);
  return { h, registry, server };
}

const url = (at: { host: string; port: number } | undefined, path: string) => {
  if (at === undefined) throw new Error("endpoint not started");
  return `http://${at.host}:${at.port}${path}`;
};

describe("startOpsServer", () => {
  it("/livez and /readyz answer 200 or 503 with each component and the reasons of failing ones", async () => {
    const { h, server } = await start([true, 0], [false, 0]);
    h.report("datastore", { live: true, ready: true });
    h.report("bgp", { live: true, ready: false, reason: "BGP peer 10.0.0.5: TCP 179 refused" });
    const live = await fetch(url(server.health, "/livez"));
    expect(live.status).toBe(200);
    const ready = await fetch(url(server.health, "/readyz"));
    expect(ready.status).toBe(503);
    expect(ready.headers.get("content-type")).toBe("application/json");
    const body = await ready.json();
    expect(body).toEqual({
      status: "failed",
      live: true,
      ready: false,
      reasons: ["bgp: BGP peer 10.0.0.5: TCP 179 refused"],
      components: [
        { name: "bgp", live: true, ready: false, reason: "BGP peer 10.0.0.5: TCP 179 refused" },
        { name: "datastore", live: true, ready: true },
      ],
    });
    h.report("bgp", { live: true, ready: true });
    expect((await fetch(url(server.health, "/readyz"))).status).toBe(200);
    h.report("dataplane", { live: false, ready: false, reason: "driver exited" });
    const dead = await fetch(url(server.health, "/livez"));
    expect(dead.status).toBe(503);
    expect(((await dead.json()) as { reasons: string[] }).reasons).toEqual(["dataplane: driver exited"]);
  });

  it("serves /metrics from the agent's registry in the Prometheus text format", async () => {
    const { registry, server } = await start([false, 0], [true, 0]);
    new Counter({ name: "margay_test_total", help: "test", registers: [registry] }).inc(3);
    const res = await fetch(url(server.metrics, "/metrics"));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    const text = await res.text();
    expect(text).toContain("margay_test_total 3");
    expect(text).toContain("margay_agent_process_cpu_user_seconds_total");
    expect(server.health).toBeUndefined();
    // Health paths are not served on a metrics-only server.
    expect((await fetch(url(server.metrics, "/readyz"))).status).toBe(404);
  });

  it("shares one server when health and metrics use the same host and port", async () => {
    const probe = createServer();
    const port = await new Promise<number>((resolve) =>
      probe.listen(0, "127.0.0.1", () => resolve((probe.address() as { port: number }).port)),
    );
    await new Promise((r) => probe.close(r));
    const { server } = await start([true, port], [true, port]);
    expect(server.health).toEqual({ host: "127.0.0.1", port });
    expect(server.metrics).toEqual({ host: "127.0.0.1", port });
    expect((await fetch(url(server.health, "/metrics"))).status).toBe(200);
    expect((await fetch(url(server.health, "/livez"))).status).toBe(200);
  });

  it("answers 404 to unknown paths and 405 to other methods", async () => {
    const { server } = await start([true, 0], [true, 0]);
    expect(server.health?.port).not.toBe(server.metrics?.port);
    expect((await fetch(url(server.health, "/nope"))).status).toBe(404);
    const post = await fetch(url(server.health, "/readyz"), { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("a port in use is a typed ops-listen-failed error and nothing is left listening", async () => {
    const busy = createServer();
    const port = await new Promise<number>((resolve) =>
      busy.listen(0, "127.0.0.1", () => resolve((busy.address() as { port: number }).port)),
    );
    try {
      const err = await startOpsServer({
        config: config([true, 0], [true, port]),
        health: createHealth(),
        metrics: createAgentMetrics(),
        logger: silentLogger,
      }).catch((e: unknown) => e);
      expect(isAgentError(err)).toBe(true);
      expect(err).toMatchObject({
        code: "ops-listen-failed",
        retryable: true,
        details: { host: "127.0.0.1", port, causeCode: "EADDRINUSE" },
      });
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it("close is idempotent and stops answering", async () => {
    const { server } = await start([true, 0], [false, 0]);
    const at = url(server.health, "/livez");
    await server.close();
    await server.close();
    await expect(fetch(at)).rejects.toThrow();
  });
});
