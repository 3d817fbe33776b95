/**
 * The agent owns its embedded datastore's snapshot while it runs (`<snapshot>.owner`): a second agent on
 * the same snapshot refuses to start with a typed error, a marker left by a dead agent is taken over, and
 * stopping releases it. The runner throws if called, so nothing here touches the kernel.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRecordingLogger } from "@margay/api";
import type { CommandRunner } from "@margay/dataplane";
import { afterEach, describe, expect, it } from "vitest";
import { processIdentity } from "../cni/ipam/file-lock.js";
import { runNodeAgent } from "./agent.js";
import { resolveBootstrapConfig } from "./config/resolve.js";
import { isSnapshotOwnedError, readSnapshotOwner, takeSnapshotOwnership } from "./snapshot-owner.js";

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
});

const noKernel: CommandRunner = {
  run: (argv) => Promise.reject(new Error(`unexpected command: ${argv.join(" ")}`)),
};

async function scratch(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "margay-owner-unit-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function configFor(stateDir: string) {
  return resolveBootstrapConfig({
    env: {
      NODENAME: "owner-node",
      MARGAY_STATE_DIR: stateDir,
      MARGAY_NETWORKING_BACKEND: "vxlan",
      IP: "10.9.0.1/24",
      MARGAY_HEALTH_ENABLED: "false",
      MARGAY_METRICS_ENABLED: "false",
    },
    hostname: "owner-node",
  });
}

/** Starts an agent; it gets past the datastore step and stops at the first kernel command. */
async function startAgent(stateDir: string) {
  const { config, sources } = configFor(stateDir);
  const agent = await runNodeAgent(config, { logger: createRecordingLogger(), sources, runner: noKernel });
  cleanup.push(() => agent.stop("SIGTERM"));
  const err = await agent.ready.catch((e: unknown) => e);
  return { agent, err, snapshot: config.datastore.type === "memory" ? config.datastore.snapshotPath : "" };
}

/** The identity (`<pid> <start time>`) of a process that has exited. */
async function deadIdentity(): Promise<string> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  const pid = child.pid!;
  const identity = processIdentity(pid) ?? `${pid} 1`;
  await new Promise((r) => child.on("exit", r));
  // Reaped: the pid names no process (or, reused, one started at another time).
  expect(processIdentity(pid)).not.toBe(identity);
  return identity;
}

describe("the agent owns its memory snapshot", () => {
  it("holds <snapshot>.owner with its pid while running and releases it on stop", async () => {
    const dir = await scratch();
    const { agent, err, snapshot } = await startAgent(dir);
    expect(err).not.toMatchObject({ details: { step: "datastore" } });
    expect(await readFile(`${snapshot}.owner`, "utf8")).toBe(processIdentity(process.pid));
    expect(readSnapshotOwner(snapshot)).toMatchObject({ pid: process.pid });
    await agent.stop("SIGTERM");
    expect(existsSync(`${snapshot}.owner`)).toBe(false);
  });

  it("a second agent on the same snapshot refuses to start: datastore-open-failed, cause snapshot-owned", async () => {
    const dir = await scratch();
    const first = await startAgent(dir);
    expect(first.err).not.toMatchObject({ details: { step: "datastore" } });
    const second = await startAgent(dir);
    expect(second.err).toMatchObject({
      name: "AgentError",
      code: "datastore-open-failed",
      retryable: false,
      details: { step: "datastore", causeCode: "snapshot-owned" },
    });
    const cause = (second.err as Error).cause;
    expect(isSnapshotOwnedError(cause)).toBe(true);
    expect(cause).toMatchObject({ details: { snapshot: first.snapshot, ownerPid: process.pid } });
    await second.agent.stop("SIGTERM");
    // The refused agent did not take (or drop) the first one's marker.
    expect(readSnapshotOwner(first.snapshot)).toMatchObject({ pid: process.pid });
    await first.agent.stop("SIGTERM");
    expect(readSnapshotOwner(first.snapshot)).toBeUndefined();
  });

  it("a marker held by another live process is refused with its pid", async () => {
    const dir = await scratch();
    const child = spawn("sleep", ["60"], { stdio: "ignore" });
    cleanup.push(async () => void child.kill("SIGKILL"));
    await new Promise((r) => child.on("spawn", r));
    const snapshot = join(dir, "datastore.json");
    await writeFile(`${snapshot}.owner`, processIdentity(child.pid!)!);
    const { err } = await startAgent(dir);
    expect(err).toMatchObject({ code: "datastore-open-failed", details: { causeCode: "snapshot-owned" } });
    expect((err as Error).message).toContain(`owned by margay-node (pid ${child.pid})`);
    expect(await readFile(`${snapshot}.owner`, "utf8")).toBe(processIdentity(child.pid!));
  });

  it("a stale marker (its agent died) is taken over", async () => {
    const dir = await scratch();
    const snapshot = join(dir, "datastore.json");
    await writeFile(`${snapshot}.owner`, await deadIdentity());
    expect(readSnapshotOwner(snapshot)).toBeUndefined();
    const { agent, err } = await startAgent(dir);
    expect(err).not.toMatchObject({ details: { step: "datastore" } });
    expect(await readFile(`${snapshot}.owner`, "utf8")).toBe(processIdentity(process.pid));
    await agent.stop("SIGTERM");
    expect(existsSync(`${snapshot}.owner`)).toBe(false);
  });

  it("takeSnapshotOwnership: a garbage marker is stale; release leaves a marker that is not ours", async () => {
    const dir = await scratch();
    const snapshot = join(dir, "s.json");
    await writeFile(`${snapshot}.owner`, "not a pid");
    const owned = takeSnapshotOwnership(snapshot);
    expect(owned.tookOver).toBe(true);
    expect(() => takeSnapshotOwnership(snapshot)).toThrow(/owned by margay-node/);
    await writeFile(`${snapshot}.owner`, "someone else");
    owned.release();
    expect(await readFile(`${snapshot}.owner`, "utf8")).toBe("someone else");
  });
});
