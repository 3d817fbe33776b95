import { canonicalIpOrThrow } from "../net.js";
import type { KernelCallOptions } from "../kernel/iproute.js";
import { type NetnsHandle, ipArgv } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import type { UnderlayPath } from "./plan.js";

const FAILED = /^Command failed -:(\d+)$/;

/**
 * Parses the output of `ip -json -force -batch -` fed one `route get <address>` line per address: each
 * answered line prints one JSON array on stdout (in order), each refused one its error and
 * `Command failed -:<line>` on stderr. An address with no parseable answer is left out.
 */
export function parseRouteGet(
  addresses: readonly string[],
  stdout: string,
  stderr: string,
): Map<string, UnderlayPath> {
  const failed = new Map<number, string>();
  let error: string[] = [];
  for (const raw of stderr.split("\n")) {
    const line = raw.trim();
    if (line === "") continue;
    const m = FAILED.exec(line);
    if (m === null) error.push(line);
    else {
      failed.set(Number(m[1]), error.join(" | ") || "no route");
      error = [];
    }
  }
  const answers = stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.startsWith("["));
  const out = new Map<string, UnderlayPath>();
  let next = 0;
  addresses.forEach((address, i) => {
    const reason = failed.get(i + 1);
    if (reason !== undefined) {
      out.set(address, { kind: "unresolved", reason: reason.replace(/^(RTNETLINK answers|Error): /, "") });
      return;
    }
    const text = answers[next++];
    const row =
      text === undefined ? undefined : (JSON.parse(text) as { gateway?: string; type?: string }[])[0];
    // No answer is no knowledge: the address stays out of the map and is programmed as given (a refusal
    // by the kernel then fails the batch visibly).
    if (row === undefined) return;
    if (row.type !== undefined && row.type !== "unicast" && row.type !== "local")
      out.set(address, { kind: "unresolved", reason: `route type ${row.type}` });
    else if (row.gateway === undefined) out.set(address, { kind: "connected" });
    else out.set(address, { kind: "gateway", via: canonicalIpOrThrow(row.gateway) });
  });
  return out;
}

/**
 * Asks the kernel how it reaches each of `addresses` (one `ip route get` each, one process): a flat
 * route through a node on another subnet must go via the router the host uses to reach that node.
 */
export async function resolveUnderlay(
  runner: CommandRunner,
  ns: NetnsHandle,
  addresses: readonly string[],
  options: KernelCallOptions = {},
): Promise<Map<string, UnderlayPath>> {
  if (addresses.length === 0) return new Map();
  const r = await runner.run(ipArgv(ns, ["-json", "-force", "-batch", "-"]), {
    stdin: `${addresses.map((a) => `route get ${a}`).join("\n")}\n`,
    signal: options.signal,
    okCodes: [0, 1],
  });
  return parseRouteGet(addresses, r.stdout, r.stderr);
}
