/**
 * IPAM delegation for plugins (libcni's `invoke.DelegateAdd`): a main plugin such as bridge runs its
 * IPAM plugin with the same CNI parameters and the same stdin, and reads its result.
 *
 * @packageDocumentation
 */

import type { CmdArgs } from "../skel/plugin-main.js";
import { parseResult } from "../spec/result.js";
import type { CniResult } from "../spec/types.js";
import {
  type ExecOptions,
  type ExecOutput,
  type ExecParams,
  execPlugin,
  findPlugin,
  parseJsonOutput,
} from "./exec-plugin.js";

function paramsFrom(args: CmdArgs, command: "ADD" | "DEL" | "CHECK"): ExecParams {
  const p: ExecParams = { command, containerId: args.containerId, ifname: args.ifname, path: args.path };
  if (args.netns !== "") p.netns = args.netns;
  if (args.args !== "") p.args = args.args;
  return p;
}

/** Finds IPAM plugin `type` on the caller's CNI_PATH and runs `command` with the caller's parameters. */
async function delegate(
  args: CmdArgs,
  type: string,
  command: "ADD" | "DEL" | "CHECK",
  stdin: string | Uint8Array,
  options: ExecOptions,
): Promise<ExecOutput> {
  const bin = await findPlugin(type, args.path);
  return execPlugin(bin, paramsFrom(args, command), stdin, { signal: args.signal, ...options });
}

/**
 * Runs IPAM plugin `type` for ADD with `stdin` (usually the plugin's own stdin) and returns its result
 * in 1.x shape. Rejects with the IPAM plugin's {@link CniError} when it reports one.
 */
export async function delegateAdd(
  args: CmdArgs,
  type: string,
  stdin: string | Uint8Array,
  options: ExecOptions = {},
): Promise<CniResult> {
  const out = await delegate(args, type, "ADD", stdin, options);
  return parseResult(parseJsonOutput(out, { plugin: type, command: "ADD" }), `$(${type} result)`);
}

/** Runs IPAM plugin `type` for DEL. */
export async function delegateDel(
  args: CmdArgs,
  type: string,
  stdin: string | Uint8Array,
  options: ExecOptions = {},
): Promise<void> {
  await delegate(args, type, "DEL", stdin, options);
}

/** Runs IPAM plugin `type` for CHECK. */
export async function delegateCheck(
  args: CmdArgs,
  type: string,
  stdin: string | Uint8Array,
  options: ExecOptions = {},
): Promise<void> {
  await delegate(args, type, "CHECK", stdin, options);
}
