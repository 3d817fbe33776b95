/**
 * Runs a real BIRD 2 daemon for interop tests and benchmarks: generated config, own control socket and
 * pid file in a temp dir, foreground process we own. Not exported.
 *
 * @packageDocumentation
 */

import type { ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { exited, run, startDaemon, stopProcess, tempDir } from "./util.js";

export const BIRD = "/usr/sbin/bird";
export const BIRDC = "/usr/sbin/birdc";

/** One route as `birdc show route all` prints it. */
export interface BirdRoute {
  prefix: string;
  /** The first line after the prefix: e.g. `unreachable [p1 12:00:00 from 127.0.0.1] * (100) [AS65001i]`. */
  summary: string;
  /** `BGP.*` attributes, e.g. `{ "BGP.as_path": "65001" }`. */
  attrs: Record<string, string>;
}

export interface Bird {
  readonly dir: string;
  readonly sock: string;
  readonly proc: ChildProcess;
  birdc(args: readonly string[]): Promise<string>;
  /** Best routes of the table (first route per prefix). */
  routes(table?: string): Promise<Map<string, BirdRoute>>;
  /** State of a protocol, e.g. `Established`. */
  protocolState(name: string): Promise<string>;
  /** Writes a new config and starts the daemon again (after a kill). */
  restart(config?: string): Promise<void>;
  signal(sig: NodeJS.Signals): void;
  stop(): Promise<void>;
}

/** Parses `show route all` output into best routes per prefix. */
export function parseBirdRoutes(text: string): Map<string, BirdRoute> {
  const out = new Map<string, BirdRoute>();
  let current: BirdRoute | null = null;
  let skipping = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("BIRD ") || line.startsWith("Table ") || line.trim() === "") continue;
    const m = /^(\S+\/\d+)\s+(.*)$/.exec(line);
    if (m) {
      current = { prefix: m[1]!, summary: m[2]!, attrs: {} };
      out.set(current.prefix, current);
      skipping = false;
      continue;
    }
    if (/^\s+(unicast|unreachable|blackhole|via|prohibit|\[)/.test(line) && !line.includes(":")) {
      // A second route of the same prefix: only the first (best) one is kept.
      skipping = true;
      continue;
    }
    const a = /^\s+(BGP\.[a-z_0-9]+|Type):\s*(.*)$/.exec(line);
    if (a && current && !skipping) current.attrs[a[1]!] = a[2]!;
  }
  return out;
}

export async function startBird(config: string, name = "bird"): Promise<Bird> {
  const t = await tempDir(`mgbgp-${name}`);
  const conf = join(t.dir, "bird.conf");
  const sock = join(t.dir, "bird.ctl");
  let proc: ChildProcess;
  const launch = async (cfg: string) => {
    await writeFile(conf, cfg);
    proc = await startDaemon(BIRD, ["-f", "-c", conf, "-s", sock, "-P", join(t.dir, "bird.pid")], {
      cwd: t.dir,
      ready: async () => (await run(BIRDC, ["-s", sock, "show", "status"], 5000)).includes("Daemon is up"),
      timeoutMs: 10_000,
    });
  };
  try {
    await launch(config);
  } catch (e) {
    await t.remove();
    throw e;
  }
  const birdc = (args: readonly string[]) => run(BIRDC, ["-s", sock, ...args]);
  return {
    dir: t.dir,
    sock,
    get proc() {
      return proc;
    },
    birdc,
    routes: async (table = "master4") =>
      parseBirdRoutes(await birdc(["show", "route", "table", table, "all"])),
    protocolState: async (p) => {
      const text = await birdc(["show", "protocols", "all", p]);
      return /BGP state:\s+(\S+)/.exec(text)?.[1] ?? "unknown";
    },
    restart: async (cfg = config) => {
      await exited(proc);
      await launch(cfg);
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
