/**
 * `margay-ipam allocations`: prints `{"network": ..., "allocations": [...]}` (the addresses held by the
 * handles of the network whose plugin configuration is on stdin, any node) and exits 0; on failure
 * prints one line on stderr and exits 1. Uses the same datastore configuration (files, `ETCD_*`) as
 * the plugin, so it can inspect a secured etcd too.
 *
 * @packageDocumentation
 */

import { hostname } from "node:os";
import { isCniError } from "@margay/cni";
import { openSession } from "./backend.js";
import { parseIpamConfig } from "./config.js";
import { toCniError } from "./plugin.js";

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** The addresses a network holds, sorted. */
export async function networkAllocations(
  conf: Record<string, unknown>,
): Promise<{ network: string; allocations: string[] }> {
  const config = parseIpamConfig(conf, hostname(), process.env);
  const session = await openSession(config, { ensure: false });
  try {
    const report = await session.ipam.check([], { scope: { handlePrefix: `${config.network}.` } });
    return { network: config.network, allocations: report.leaks.flatMap((l) => l.ips).sort() };
  } finally {
    await session.close();
  }
}

/** The subcommand's main. */
export async function inspectMain(): Promise<void> {
  try {
    const conf = JSON.parse(await readStdin()) as Record<string, unknown>;
    process.stdout.write(`${JSON.stringify(await networkAllocations(conf))}\n`);
    process.exit(0);
  } catch (e) {
    const c = toCniError(e);
    const msg = isCniError(c)
      ? `${c.message}${c.details ? ` (${c.details})` : ""}`
      : e instanceof Error
        ? e.message
        : String(e);
    process.stderr.write(`margay-ipam allocations: ${msg}\n`);
    process.exit(1);
  }
}
