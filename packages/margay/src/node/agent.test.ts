/**
 * runNodeAgent's startup failures and stop before the kernel is touched (the runner throws if called):
 * each failure is typed and names its step; stop during startup ends it; an injected datastore stays open.
 */
import { writeFile, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRecordingLogger } from "@margay/api";
import type { CommandRunner } from "@margay/dataplane";
import { createMemoryDatastore, type Datastore, unavailableError } from "@margay/datastore";
import { afterEach, describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import { runNodeAgent } from "./agent.js";
import { resolveBootstrapConfig } from "./config/resolve.js";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

const noKernel: CommandRunner = {
  run: (argv) => Promise.reject(new Error(`unexpected command: ${argv.join(" ")}`)),
};

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "margay-agent-unit-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function configFor(stateDir: string, env: Record<string, string> = {}) {
  return resolveBootstrapConfig({
    env: {
      NODENAME: "unit-node",
      MARGAY_STATE_DIR: stateDir,
      MARGAY_NETWORKING_BACKEND: "vxlan",
      IP: "10.9.0.1/24",
      // No default ports on a shared machine; the test that wants the health server sets its own.
      MARGAY_HEALTH_ENABLED: "false",
      MARGAY_METRICS_ENABLED: "false",
      ...env,
    },
    hostname: "unit-node",
  });
}

describe("runNodeAgent startup failures", () => {
  it("a corrupt snapshot is datastore-open-failed at step datastore, logged once with its code", async () => {
    const dir = await scratch();
    await writeFile(join(dir, "datastore.json"), "{ not json");
    const { config, sources } = configFor(dir);
    const logger = createRecordingLogger();
    const agent = await runNodeAgent(config, { logger, sources, runner: noKernel });
    const err = await agent.ready.catch((e: unknown) => e);
    expect(err).toMatchObject({
      name: "AgentError",
      code: "datastore-open-failed",
      details: { step: "datastore" },
    });
    const errors = logger.find({ level: "error" });
    expect(errors).toHaveLength(1);
    expect(errors[0]?.attributes).toMatchObject({ code: "datastore-open-failed", step: "datastore" });
    await agent.stop("SIGTERM");
  });

  it("a health port in use is ops-listen-failed at step operations", async () => {
    const busy = createServer();
    const port = await new Promise<number>((r) =>
      busy.listen(0, "127.0.0.1", () => r((busy.address() as { port: number }).port)),
    );
    cleanup.push(() => new Promise((r) => busy.close(() => r())));
    const dir = await scratch();
    const { config, sources } = configFor(dir, {
      MARGAY_HEALTH_ENABLED: "true",
      MARGAY_HEALTH_HOST: "127.0.0.1",
      MARGAY_HEALTH_PORT: String(port),
    });
    const agent = await runNodeAgent(config, { logger: createRecordingLogger(), sources, runner: noKernel });
    const err = await agent.ready.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "ops-listen-failed", details: { port, causeCode: "EADDRINUSE" } });
    expect(agent.health.snapshot().components.agent?.reason).toMatch(/^startup failed at step operations: /);
    await agent.stop("SIGTERM");
  });

  it("an invalid AgentConfiguration in the datastore is the configuration's typed error", async () => {
    const dir = await scratch();
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanup.push(() => ds.close());
    // Written without validation (another tool, an older version): the agent must reject it, not crash.
    const bad = {
      apiVersion: "margay.io/v1",
      kind: "AgentConfiguration",
      metadata: { name: "default" },
      spec: { vxlanPort: "not a port" },
    };
    const wrapped = {
      get: ((key: { kind: string; name: string }, o?: { signal?: AbortSignal }) =>
        key.kind === "AgentConfiguration" && key.name === "default"
          ? Promise.resolve(bad)
          : ds.get(key, o)) as Datastore["get"],
    } as unknown as Datastore;
    const { config, sources } = configFor(dir);
    const agent = await runNodeAgent(config, {
      logger: createRecordingLogger(),
      sources,
      runner: noKernel,
      datastore: wrapped,
    });
    const err = await agent.ready.catch((e: unknown) => e);
    expect(err).toMatchObject({ name: "AgentConfigError", code: "invalid-resource" });
    await agent.stop("SIGTERM");
  });

  it("retries a datastore that is unavailable at start, then goes on to the next step", async () => {
    const dir = await scratch();
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanup.push(() => ds.close());
    let failures = 2;
    const flaky = {
      get: ((key: { kind: string; name: string }, o?: { signal?: AbortSignal }) => {
        if (failures > 0) {
          failures--;
          return Promise.reject(unavailableError("etcd: connection refused", { backend: "etcd" }));
        }
        return ds.get(key, o);
      }) as Datastore["get"],
      list: ((k: string, o?: { signal?: AbortSignal }) => ds.list(k, o)) as Datastore["list"],
    } as unknown as Datastore;
    const { config, sources } = configFor(dir);
    const logger = createRecordingLogger();
    const agent = await runNodeAgent(config, { logger, sources, runner: noKernel, datastore: flaky });
    const err = await agent.ready.catch((e: unknown) => e);
    // Past the datastore: it fails where the (absent) kernel is first needed.
    expect(err).toBeInstanceOf(Error);
    expect(
      logger.find({ level: "warn", message: "startup step failed; retrying" }).length,
    ).toBeGreaterThanOrEqual(1);
    expect(logger.find({ level: "error" })[0]?.attributes).toMatchObject({ step: "addresses" });
    await agent.stop("SIGTERM");
  });

  it("stop during a startup step that waits ends startup (typed 'stopped'), and leaves an injected datastore open", async () => {
    const dir = await scratch();
    const ds = createMemoryDatastore({ validate: apiValidator });
    cleanup.push(() => ds.close());
    let waiting!: () => void;
    const entered = new Promise<void>((r) => {
      waiting = r;
    });
    // A datastore that never answers the first read (etcd unreachable), but honours the abort signal.
    const hung = {
      get: (_k: unknown, o?: { signal?: AbortSignal }) =>
        new Promise((_, reject) => {
          waiting();
          o?.signal?.addEventListener("abort", () => reject(o.signal?.reason), { once: true });
        }),
      list: (k: string) => ds.list(k),
      close: () => ds.close(),
    } as unknown as Datastore;
    const { config, sources } = configFor(dir);
    const agent = await runNodeAgent(config, {
      logger: createRecordingLogger(),
      sources,
      runner: noKernel,
      datastore: hung,
    });
    await entered;
    await agent.stop("SIGTERM");
    const err = await agent.ready.catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "stopped", details: { step: "agent-configuration" } });
    // Still usable: the agent did not close a datastore it was given.
    expect((await ds.list("Node")).items).toEqual([]);
  });
});
