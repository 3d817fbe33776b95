/**
 * Helpers for interop tests and benchmarks: free ports, temp dirs, polling, processes. Not exported.
 *
 * @packageDocumentation
 */

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";

/** A TCP port free on `host` right now. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ host, port: 0, exclusive: true }, () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A fresh temporary directory with a random suffix, and its removal. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Polls `f` until it returns something other than undefined/false. */
export async function waitFor<T>(
  f: () => T | undefined | false | Promise<T | undefined | false>,
  what: string,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs a program with an argument array; resolves with stdout. */
export function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 512 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** Resolves when the child exits (immediately if it already has). */
export function exited(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => p.once("exit", () => resolve()));
}

/**
 * Stops a daemon we spawned: SIGCONT first (a test may have SIGSTOPped it), then SIGTERM, and SIGKILL
 * if it has not exited within `graceMs`.
 */
export async function stopProcess(p: ChildProcess, graceMs = 3000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  p.kill("SIGCONT");
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), graceMs);
  await exited(p);
  clearTimeout(timer);
}

/**
 * Spawns a daemon in `cwd` (its output kept, the last 20 kB) and polls `ready` until it is true. When the
 * daemon exits first or `timeoutMs` passes, it is stopped and the promise rejects with its output: a
 * daemon that never came up must not outlive the run.
 */
export async function startDaemon(
  cmd: string,
  args: readonly string[],
  o: { cwd: string; ready: () => Promise<boolean>; timeoutMs: number },
): Promise<ChildProcess> {
  const name = basename(cmd);
  const proc = spawn(cmd, [...args], { cwd: o.cwd, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-20_000);
  };
  proc.stdout?.on("data", keep);
  proc.stderr?.on("data", keep);
  // A program that cannot be spawned (not installed) reports here, with exitCode set, not by a crash.
  proc.on("error", (e) => keep(Buffer.from(`${e.message}\n`)));
  let up: "ready" | "exited";
  try {
    // waitFor retries a `ready` that throws (not listening yet); an exit ends the wait at once.
    up = await waitFor(
      async () => (proc.exitCode !== null ? "exited" : (await o.ready()) && "ready"),
      `${name} to start`,
      o.timeoutMs,
    );
  } catch (e) {
    await stopProcess(proc);
    throw e;
  }
  if (up === "exited") throw new Error(`${name} exited (code ${proc.exitCode}): ${log}`);
  return proc;
}
