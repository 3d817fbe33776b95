/**
 * Runs a real GoBGP daemon for interop tests and benchmarks: generated TOML config, its own gRPC API
 * port, `gobgp ... -j` for assertions. Not exported.
 *
 * @packageDocumentation
 */

import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort, run, startDaemon, stopProcess, tempDir } from "./util.js";

export const GOBGPD = "/usr/bin/gobgpd";
export const GOBGP = "/usr/bin/gobgp";

/** One path of `gobgp global rib -j`. */
export interface GobgpPath {
  nlri: { prefix: string };
  best?: boolean;
  stale?: boolean;
  attrs: { type: number; [k: string]: unknown }[];
}

export interface Gobgp {
  readonly dir: string;
  readonly apiPort: number;
  readonly proc: ChildProcess;
  gobgp(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** `global rib -a <family> -j`. */
  rib(family?: "ipv4" | "ipv6"): Promise<Record<string, GobgpPath[]>>;
  /** Session state of a neighbour (6 = established). */
  neighborState(address: string): Promise<number | undefined>;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

export async function startGobgp(config: string, name = "gobgp"): Promise<Gobgp> {
  const t = await tempDir(`mgbgp-${name}`);
  const conf = join(t.dir, "gobgpd.toml");
  await writeFile(conf, config);
  const apiPort = await freePort("127.0.0.1");
  const gobgp = (args: readonly string[], timeoutMs?: number) =>
    run(GOBGP, ["-u", "127.0.0.1", "-p", String(apiPort), ...args], timeoutMs);
  let proc: ChildProcess;
  try {
    proc = await startDaemon(
      GOBGPD,
      ["-f", conf, "-t", "toml", "--api-hosts", `127.0.0.1:${apiPort}`, "--pprof-disable", "-l", "warn"],
      {
        cwd: t.dir,
        ready: async () => {
          await gobgp(["global", "-j"], 5000);
          return true;
        },
        timeoutMs: 10_000,
      },
    );
  } catch (e) {
    await t.remove();
    throw e;
  }
  return {
    dir: t.dir,
    apiPort,
    proc,
    gobgp,
    rib: async (family = "ipv4") => {
      const text = await gobgp(["global", "rib", "-a", family, "-j"], 120_000);
      return text.trim() === "" ? {} : (JSON.parse(text) as Record<string, GobgpPath[]>);
    },
    neighborState: async (address) => {
      const list = JSON.parse(await gobgp(["neighbor", "-j"])) as {
        state: { neighbor_address: string; session_state?: number };
      }[];
      return list.find((n) => n.state.neighbor_address === address)?.state.session_state;
    },
    signal: (sig) => {
      proc.kill(sig);
    },
    stop: async () => {
      await stopProcess(proc);
      await t.remove();
    },
  };
}
