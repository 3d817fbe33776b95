/**
 * Executing one plugin binary: argument-array spawn, the CNI environment, stdin in, stdout parsed as a
 * result, version info or error object, with a per-exec timeout and an AbortSignal.
 *
 * @packageDocumentation
 */

import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { join } from "node:path";
import { CniError, parseErrorObject } from "../spec/errors.js";
import type { CniCommand } from "../spec/types.js";
import { CniExecError, CniExecErrorCode } from "./exec-error.js";

/** The `CNI_*` parameters of one execution (spec "Parameters"). */
export interface ExecParams {
  /** `CNI_COMMAND`. */
  command: CniCommand | (string & {});
  /** `CNI_CONTAINERID`. */
  containerId?: string | undefined;
  /** `CNI_NETNS`. */
  netns?: string | undefined;
  /** `CNI_IFNAME`. */
  ifname?: string | undefined;
  /** `CNI_ARGS` (already formatted). */
  args?: string | undefined;
  /** `CNI_PATH` directories. */
  path: readonly string[];
}

/** Options of {@link execPlugin}. */
export interface ExecOptions {
  /** Kill the plugin after this long. Default: 60 000 ms. */
  timeoutMs?: number | undefined;
  /** Kills the plugin when aborted. */
  signal?: AbortSignal | undefined;
  /**
   * Base environment (CNI_* keys are set on top). Default: only a standard `PATH`, because plugins such
   * as portmap and bridge run iptables / nft by name. Libraries never read `process.env`: pass it here
   * if the plugins need more.
   */
  env?: Readonly<Record<string, string>> | undefined;
  /**
   * Command prefix the plugin runs under, e.g. `["ip", "netns", "exec", "node1"]` to run plugins inside
   * a namespace standing in for the host. Default: none (the plugin is executed directly).
   */
  launcher?: readonly string[] | undefined;
}

/** Raw outcome of an execution that exited 0. */
export interface ExecOutput {
  /** Stdout text. */
  stdout: string;
  /** Stderr text (logs). */
  stderr: string;
}

/** The default plugin environment (see {@link ExecOptions.env}). */
export const DEFAULT_PLUGIN_ENV: Readonly<Record<string, string>> = Object.freeze({
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
});

/** Default per-exec timeout. */
export const DEFAULT_EXEC_TIMEOUT_MS = 60_000;

/**
 * Finds plugin `type` on the path list: the first regular, executable file `dir/type`. The type must be
 * a plain file name (no `/`), so a configuration cannot name an arbitrary binary.
 */
export async function findPlugin(type: string, path: readonly string[]): Promise<string> {
  if (type === "" || type.includes("/") || type === "." || type === "..") {
    throw new CniExecError(CniExecErrorCode.PluginNotFound, "invalid plugin type", { plugin: type });
  }
  for (const dir of path) {
    const candidate = join(dir, type);
    try {
      const st = await stat(candidate);
      if (!st.isFile()) continue;
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; try the next directory
    }
  }
  throw new CniExecError(
    CniExecErrorCode.PluginNotFound,
    `failed to find plugin "${type}" in path [${path.join(" ")}]`,
    {
      plugin: type,
    },
  );
}

/** Builds the environment of an execution. */
export function cniEnv(
  params: ExecParams,
  base: Readonly<Record<string, string>> = DEFAULT_PLUGIN_ENV,
): Record<string, string> {
  const env: Record<string, string> = {
    ...base,
    CNI_COMMAND: params.command,
    CNI_PATH: params.path.join(":"),
  };
  if (params.containerId !== undefined) env.CNI_CONTAINERID = params.containerId;
  if (params.netns !== undefined) env.CNI_NETNS = params.netns;
  if (params.ifname !== undefined) env.CNI_IFNAME = params.ifname;
  if (params.args !== undefined) env.CNI_ARGS = params.args;
  return env;
}

const STDERR_TAIL = 4096;

/** Splits `launcher + [bin]` into the file to spawn and its arguments. */
export function withLauncher(bin: string, launcher: readonly string[] | undefined): [string, string[]] {
  if (launcher === undefined || launcher.length === 0) return [bin, []];
  return [launcher[0]!, [...launcher.slice(1), bin]];
}

/**
 * Runs a plugin binary (by path) with `stdin`, and resolves with its output when it exits 0. A non-zero
 * exit with an error object on stdout rejects with that {@link CniError} (the plugin's code, message
 * and details); any other failure rejects with a {@link CniExecError}.
 */
export function execPlugin(
  pluginPath: string,
  params: ExecParams,
  stdin: string | Uint8Array,
  options: ExecOptions = {},
): Promise<ExecOutput> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  const ctx = { plugin: pluginPath, command: params.command };
  return new Promise<ExecOutput>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new CniExecError(CniExecErrorCode.Aborted, "aborted before exec", ctx, options.signal.reason));
      return;
    }
    const [file, argv] = withLauncher(pluginPath, options.launcher);
    const child = spawn(file, argv, { env: cniEnv(params, options.env), stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let errLen = 0;
    let why: "timeout" | "aborted" | undefined;
    const kill = (reason: "timeout" | "aborted") => {
      why ??= reason;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(() => kill("timeout"), timeoutMs);
    const onAbort = () => kill("aborted");
    options.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => {
      err.push(b);
      errLen += b.length;
      while (errLen > STDERR_TAIL * 4 && err.length > 1) errLen -= err.shift()!.length;
    });
    // A plugin that exits without reading stdin makes the write fail with EPIPE; its exit status says more.
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);
    child.on("error", (e) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      reject(new CniExecError(CniExecErrorCode.ExecFailed, `failed to exec plugin: ${e.message}`, ctx, e));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8").slice(-STDERR_TAIL);
      if (why === "timeout") {
        reject(
          new CniExecError(CniExecErrorCode.Timeout, `plugin timed out after ${timeoutMs} ms`, {
            ...ctx,
            stderr,
          }),
        );
        return;
      }
      if (why === "aborted") {
        reject(
          new CniExecError(
            CniExecErrorCode.Aborted,
            "plugin execution aborted",
            { ...ctx, stderr },
            options.signal?.reason,
          ),
        );
        return;
      }
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      let obj: ReturnType<typeof parseErrorObject>;
      try {
        obj = parseErrorObject(JSON.parse(stdout));
      } catch {
        obj = undefined;
      }
      if (obj !== undefined) {
        reject(
          new CniError(obj.code, obj.msg, {
            details: obj.details,
            context: { ...ctx, exitCode: code, stderr },
          }),
        );
        return;
      }
      reject(
        new CniExecError(
          CniExecErrorCode.ExecFailed,
          `plugin exited with status ${code} without a CNI error object`,
          {
            ...ctx,
            exitCode: code,
            stderr,
            stdout: stdout.slice(0, STDERR_TAIL),
          },
        ),
      );
    });
  });
}

/** Parses stdout that must be a JSON object (a result or version info). */
export function parseJsonOutput(
  output: ExecOutput,
  ctx: { plugin: string; command: string },
): Record<string, unknown> {
  try {
    const v = JSON.parse(output.stdout) as unknown;
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch (e) {
    throw new CniExecError(
      CniExecErrorCode.InvalidOutput,
      "plugin output is not JSON",
      { ...ctx, stdout: output.stdout.slice(0, 512) },
      e,
    );
  }
  throw new CniExecError(CniExecErrorCode.InvalidOutput, "plugin output is not a JSON object", {
    ...ctx,
    stdout: output.stdout.slice(0, 512),
  });
}
