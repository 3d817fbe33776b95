/**
 * Runs a real FRR `bgpd` (Debian package `frr`) for interop tests: generated config, its own pid file and
 * vty socket directory in a temp dir, no zebra (`-Z`), no kernel routes, listening on one address. A
 * foreground process we own; `vtysh --vty_socket` reaches it for assertions and runtime config.
 * Not exported.
 *
 * @packageDocumentation
 */

import type { ChildProcess } from "node:child_process";
import { access, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { run, startDaemon, stopProcess, tempDir } from "./util.js";

export const BGPD = "/usr/lib/frr/bgpd";
export const VTYSH = "/usr/bin/vtysh";

/** True when FRR's bgpd and vtysh are installed. */
export async function haveFrr(): Promise<boolean> {
  try {
    await access(BGPD);
    await access(VTYSH);
    return true;
  } catch {
    return false;
  }
}

export interface Frr {
  readonly dir: string;
  readonly proc: ChildProcess;
  /** Runs vtysh commands (each one a `-c`) against this daemon. */
  vtysh(commands: readonly string[]): Promise<string>;
  /** `show bgp <afi> unicast json`: the routes, by prefix. */
  routes(afi: "ipv4" | "ipv6"): Promise<Record<string, unknown[]>>;
  /** BGP state of a neighbour, e.g. `Established`. */
  neighborState(address: string): Promise<string | undefined>;
  stop(): Promise<void>;
}

export async function startFrr(config: string, listen: string, port: number, name = "frr"): Promise<Frr> {
  const t = await tempDir(`mgbgp-${name}`);
  const conf = join(t.dir, "bgpd.conf");
  await writeFile(conf, config);
  const vtysh = (commands: readonly string[]) =>
    run(VTYSH, ["--vty_socket", t.dir, "-d", "bgpd", ...commands.flatMap((c) => ["-c", c])], 10_000);
  let proc: ChildProcess;
  try {
    proc = await startDaemon(
      BGPD,
      // -S: stay root (the test owns the process); -Z: no zebra; -P 0: no TCP vty, the socket dir only.
      ["-f", conf, "-i", join(t.dir, "bgpd.pid"), "--vty_socket", t.dir, "-Z", "-S", "-P", "0"].concat([
        "-p",
        String(port),
        "-l",
        listen,
      ]),
      {
        cwd: t.dir,
        ready: async () => (await vtysh(["show bgp summary json"])).includes("{"),
        timeoutMs: 15_000,
      },
    );
  } catch (e) {
    await t.remove();
    throw e;
  }
  return {
    dir: t.dir,
    proc,
    vtysh,
    routes: async (afi) => {
      const j = JSON.parse(await vtysh([`show bgp ${afi} unicast json`])) as {
        routes?: Record<string, unknown[]>;
      };
      return j.routes ?? {};
    },
    neighborState: async (address) => {
      const j = JSON.parse(await vtysh([`show bgp neighbors ${address} json`])) as Record<
        string,
        { bgpState?: string }
      >;
      return j[address]?.bgpState;
    },
    stop: async () => {
      await stopProcess(proc);
      await t.remove();
    },
  };
}
