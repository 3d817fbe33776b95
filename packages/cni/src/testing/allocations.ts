/**
 * Allocation inspectors: list the addresses an IPAM plugin currently holds, so scenarios can check that
 * no address stays allocated. Without one, the kit checks interfaces only and its report says so.
 *
 * - {@link hostLocalAllocations}: host-local's files;
 * - {@link commandAllocations}: any IPAM, through a command the tester provides (`--inspect`);
 * - {@link margayIpamAllocations}: margay-ipam's stores (memory snapshot or etcd, TLS included),
 *   through the plugin's own `allocations` subcommand.
 *
 * @packageDocumentation
 */

import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import { isIP } from "node:net";
import { join } from "node:path";

/**
 * The addresses `host-local` holds for a network: the file names under `<dataDir>/<network>` that are
 * IP addresses (its `last_reserved_ip.*` and `lock` files are skipped).
 */
export function hostLocalAllocations(dataDir: string, network: string): () => Promise<string[]> {
  return async () => {
    try {
      return (await readdir(join(dataDir, network))).filter((f) => isIP(f) !== 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
  };
}

/** Options of {@link commandAllocations}. */
export interface CommandAllocationsOptions {
  /** Written to the command's stdin. Default: nothing. */
  stdin?: string | undefined;
  /** Environment. Default: the kit's own. */
  env?: Readonly<Record<string, string | undefined>> | undefined;
  /** Kill the command after this long. Default 30 000 ms. */
  timeoutMs?: number | undefined;
}

/**
 * Parses an inspector's output: a JSON array of addresses, a JSON object with an `allocations` array,
 * or one address per line. Addresses may carry a prefix length (dropped). Anything else throws.
 */
export function parseAllocations(text: string): string[] {
  const t = text.trim();
  let items: unknown[];
  if (t.startsWith("[") || t.startsWith("{")) {
    const v = JSON.parse(t) as unknown;
    const list = Array.isArray(v) ? v : (v as { allocations?: unknown }).allocations;
    if (!Array.isArray(list)) throw new Error("inspector output: a JSON object without an allocations array");
    items = list;
  } else {
    items =
      t === ""
        ? []
        : t
            .split(/\r?\n/)
            .map((l) => l.trim())
            .filter((l) => l !== "");
  }
  return items.map((x) => {
    const s = typeof x === "string" ? x.replace(/\/\d+$/, "") : "";
    if (isIP(s) === 0) throw new Error(`inspector output: not an IP address: ${JSON.stringify(x)}`);
    return s;
  });
}

/**
 * An inspector that runs `argv` (no shell) and parses its output with {@link parseAllocations}. A
 * non-zero exit, a timeout or unparsable output fails the calling scenario (never a silent pass).
 */
export function commandAllocations(
  argv: readonly string[],
  options: CommandAllocationsOptions = {},
): () => Promise<string[]> {
  if (argv.length === 0 || argv[0] === "") throw new Error("inspect command: empty argument list");
  return () =>
    new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        stdio: ["pipe", "pipe", "pipe"],
        env: { ...(options.env ?? process.env) },
        timeout: options.timeoutMs ?? 30_000,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (c: Buffer) => out.push(c));
      child.stderr.on("data", (c: Buffer) => err.push(c));
      child.on("error", (e) => reject(new Error(`inspect command ${argv[0]}: ${e.message}`)));
      child.on("close", (code, signal) => {
        if (code !== 0) {
          const tail = Buffer.concat(err).toString("utf8").trim().slice(-300);
          reject(new Error(`inspect command ${argv[0]} exited ${code ?? signal}${tail ? `: ${tail}` : ""}`));
          return;
        }
        try {
          resolve(parseAllocations(Buffer.concat(out).toString("utf8")));
        } catch (e) {
          reject(new Error(`inspect command ${argv[0]}: ${(e as Error).message}`));
        }
      });
      child.stdin.on("error", () => undefined);
      child.stdin.end(options.stdin ?? "");
    });
}

/**
 * margay-ipam's stores (the memory snapshot under its lock, or etcd with the configuration's TLS and
 * credentials): runs `<bin> allocations` with the plugin configuration `pluginConf` (the plugin's
 * stdin: the network's `name` and its `ipam` section) and returns the addresses the network holds.
 * Runs in the kit's own namespace, so an etcd on the host's loopback is reachable.
 */
export function margayIpamAllocations(
  bin: string,
  pluginConf: Readonly<Record<string, unknown>>,
  options: Omit<CommandAllocationsOptions, "stdin"> = {},
): () => Promise<string[]> {
  return commandAllocations([bin, "allocations"], { ...options, stdin: JSON.stringify(pluginConf) });
}
