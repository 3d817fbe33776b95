/**
 * The plugin skeleton: the one place a CNI plugin reads its environment and stdin, validates them,
 * negotiates the version, dispatches to its verb handlers and prints the result or the error object.
 *
 * `runPlugin` is pure of process state (environment, stdin and outputs are parameters) so it can be
 * tested in-process; `pluginMain` wires it to the real process, like libcni's `skel.PluginMain`.
 *
 * @packageDocumentation
 */

import { readSync, statSync, writeSync } from "node:fs";
import { type CniArgs, parseCniArgs } from "../spec/cni-args.js";
import { decodeJson, validAttachmentsOf, validateNetConf } from "../spec/config.js";
import { CniError, CniErrorCode, isCniError } from "../spec/errors.js";
import { validateContainerId, validateInterfaceName, validateNetnsPath } from "../spec/names.js";
import { convertResult, parseResult } from "../spec/result.js";
import type { CniResult, NetConf, ValidAttachment } from "../spec/types.js";
import {
  CURRENT_CNI_VERSION,
  checkVersionSupported,
  highestVersion,
  isVersionString,
  SUPPORTED_CNI_VERSIONS,
  type VersionInfo,
  versionAtLeast,
} from "../spec/version.js";
import { type PluginInput, readLimited } from "./read-limited.js";

/** Arguments of ADD, DEL and CHECK. */
export interface CmdArgs {
  /** The verb. */
  command: "ADD" | "DEL" | "CHECK";
  /** `CNI_CONTAINERID`. */
  containerId: string;
  /** `CNI_NETNS`; empty for a DEL whose namespace is gone. */
  netns: string;
  /** `CNI_IFNAME`. */
  ifname: string;
  /** Raw `CNI_ARGS`. */
  args: string;
  /** `CNI_ARGS` parsed leniently (any key accepted; use `parseCniArgs` with `known` to be strict). */
  cniArgs: CniArgs;
  /** `CNI_PATH` split on `:`. */
  path: string[];
  /** The raw stdin bytes. */
  stdin: Buffer;
  /** The validated configuration. */
  config: NetConf;
  /** `config.cniVersion`: the version to answer in. */
  cniVersion: string;
  /** The previous result in the chain, validated and in 1.x shape. */
  prevResult: CniResult | undefined;
  /** Aborted when the plugin should stop (SIGTERM under `pluginMain`). */
  signal: AbortSignal;
}

/** Arguments of STATUS (1.1.0). */
export interface StatusArgs {
  /** The verb. */
  command: "STATUS";
  /** `CNI_PATH` split on `:`. */
  path: string[];
  /** The raw stdin bytes. */
  stdin: Buffer;
  /** The validated configuration. */
  config: NetConf;
  /** `config.cniVersion`. */
  cniVersion: string;
  /** Aborted when the plugin should stop. */
  signal: AbortSignal;
}

/** Arguments of GC (1.1.0). */
export interface GcArgs extends Omit<StatusArgs, "command"> {
  /** The verb. */
  command: "GC";
  /** `cni.dev/valid-attachments`: everything else this plugin holds for the network may go. */
  validAttachments: ValidAttachment[];
}

/** What a plugin implements. Handlers throw a {@link CniError} to report a specific code. */
export interface PluginHandlers {
  /** ADD: create the attachment and return its result. */
  add(args: CmdArgs): Promise<CniResult> | CniResult;
  /** DEL: remove the attachment; must succeed when it is already gone. */
  del(args: CmdArgs): Promise<void> | void;
  /** CHECK: throw if the attachment is not as `prevResult` says. */
  check(args: CmdArgs): Promise<void> | void;
  /** STATUS (1.1.0): throw code 50/51 when not ready. Default: ready. */
  status?(args: StatusArgs): Promise<void> | void;
  /** GC (1.1.0): release what is not in `validAttachments`. Default: nothing to collect. */
  gc?(args: GcArgs): Promise<void> | void;
}

/** Static facts and limits of a plugin. */
export interface PluginInfo {
  /** Spec versions the plugin accepts. Default: every version of {@link SUPPORTED_CNI_VERSIONS}. */
  supportedVersions?: readonly string[] | undefined;
  /** Free text for logs (e.g. `"margay-ipam v0.1.0"`). */
  about?: string | undefined;
  /** Largest stdin accepted, in bytes. Default: 1 MiB. */
  maxStdinBytes?: number | undefined;
  /** For ADD and CHECK, fail with code 3 when `CNI_NETNS` does not exist. Default: true. */
  checkNetnsExists?: boolean | undefined;
}

/** Outcome of one plugin invocation. */
export interface PluginOutcome {
  /** 0 on success, 1 on error. */
  exitCode: number;
  /** What goes to stdout: the result, version info or error object (JSON), or nothing. */
  stdout: string;
  /** Diagnostics for stderr (never parsed by a runtime). */
  stderr: string;
  /** The error reported, if any. */
  error?: CniError;
}

/** Process state handed to {@link runPlugin}. */
export interface PluginIo {
  /** The environment (only the `CNI_*` keys are read). */
  env: Readonly<Record<string, string | undefined>>;
  /** Stdin. */
  stdin: PluginInput;
  /** Cancels handlers. */
  signal?: AbortSignal | undefined;
}

/** Default stdin limit: 1 MiB, far above any real configuration. */
export const DEFAULT_MAX_STDIN_BYTES = 1024 * 1024;

/** Environment variables each verb requires (spec section "Parameters" and each verb's section). */
export const REQUIRED_ENV: Readonly<Record<string, readonly string[]>> = Object.freeze({
  ADD: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  CHECK: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"],
  DEL: ["CNI_CONTAINERID", "CNI_IFNAME"],
  STATUS: [],
  GC: ["CNI_PATH"],
  VERSION: [],
});

/** The first specification version of each verb that did not exist from the start. */
export const VERB_MIN_VERSION: Readonly<Record<string, string>> = Object.freeze({
  CHECK: "0.4.0",
  STATUS: "1.1.0",
  GC: "1.1.0",
});

/**
 * Runs one plugin invocation against explicit process state. Never throws: every failure becomes an
 * error object on `stdout` with a non-zero `exitCode`, and diagnostics (never a stack trace on stdout)
 * go to `stderr`.
 */
export async function runPlugin(
  handlers: PluginHandlers,
  info: PluginInfo,
  io: PluginIo,
): Promise<PluginOutcome> {
  const supported = info.supportedVersions ?? SUPPORTED_CNI_VERSIONS;
  let answerVersion: string = highestVersion(supported) ?? CURRENT_CNI_VERSION;
  try {
    const out = await dispatch(handlers, info, io, supported, (v) => {
      answerVersion = v;
    });
    return { exitCode: 0, stdout: out, stderr: "" };
  } catch (e) {
    const error = isCniError(e)
      ? e
      : new CniError(CniErrorCode.Internal, e instanceof Error ? e.message : String(e), { cause: e });
    const stderr = isCniError(e)
      ? ""
      : `${about(info)}unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`;
    return { exitCode: 1, stdout: `${JSON.stringify(error.toErrorObject(answerVersion))}\n`, stderr, error };
  }
}

function about(info: PluginInfo): string {
  return info.about ? `${info.about}: ` : "";
}

async function dispatch(
  handlers: PluginHandlers,
  info: PluginInfo,
  io: PluginIo,
  supported: readonly string[],
  setAnswerVersion: (v: string) => void,
): Promise<string> {
  const env = io.env;
  const command = env.CNI_COMMAND;
  if (command === undefined || command === "") {
    throw new CniError(
      CniErrorCode.InvalidEnvironmentVariables,
      "required env variables [CNI_COMMAND] missing",
    );
  }
  const required = REQUIRED_ENV[command];
  if (required === undefined) {
    throw new CniError(CniErrorCode.InvalidEnvironmentVariables, `unknown CNI_COMMAND: ${command}`);
  }
  const missing = required.filter((k) => env[k] === undefined || env[k] === "");
  if (missing.length > 0) {
    throw new CniError(
      CniErrorCode.InvalidEnvironmentVariables,
      `required env variables [${missing.join(" ")}] missing`,
      {
        context: { missing },
      },
    );
  }
  const containerId = env.CNI_CONTAINERID ?? "";
  const ifname = env.CNI_IFNAME ?? "";
  const netns = env.CNI_NETNS ?? "";
  if (command === "ADD" || command === "CHECK" || command === "DEL") {
    validateContainerId(containerId);
    validateInterfaceName(ifname);
    if (netns !== "") validateNetnsPath(netns);
  }

  const stdin = await readLimited(io.stdin, info.maxStdinBytes ?? DEFAULT_MAX_STDIN_BYTES);

  if (command === "VERSION") {
    const asked = versionAskedFor(stdin);
    const v =
      asked !== undefined && supported.includes(asked)
        ? asked
        : (highestVersion(supported) ?? CURRENT_CNI_VERSION);
    const vi: VersionInfo = { cniVersion: v, supportedVersions: [...supported] };
    return `${JSON.stringify(vi)}\n`;
  }

  const raw = decodeJson(stdin);
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new CniError(CniErrorCode.DecodingFailure, "network config must be a JSON object");
  }
  const rawVersion = (raw as { cniVersion?: unknown }).cniVersion;
  if (typeof rawVersion === "string" && isVersionString(rawVersion)) {
    checkVersionSupported(rawVersion, supported);
    setAnswerVersion(rawVersion);
  }
  const config = validateNetConf(raw);
  const cniVersion = config.cniVersion;
  const floor = VERB_MIN_VERSION[command];
  if (floor !== undefined && !versionAtLeast(cniVersion, floor)) {
    // As libcni's skeleton: a verb newer than the configuration's version is an incompatible version.
    throw new CniError(CniErrorCode.IncompatibleVersion, `config version does not allow ${command}`, {
      details: `cniVersion ${JSON.stringify(cniVersion)}; ${command} needs ${floor} or later`,
    });
  }
  const path = (env.CNI_PATH ?? "").split(":").filter((p) => p !== "");
  const signal = io.signal ?? new AbortController().signal;

  if (command === "STATUS") {
    await handlers.status?.({ command, path, stdin, config, cniVersion, signal });
    return "";
  }
  if (command === "GC") {
    const validAttachments = validAttachmentsOf(config);
    await handlers.gc?.({ command, path, stdin, config, cniVersion, signal, validAttachments });
    return "";
  }

  let prevResult: CniResult | undefined;
  if (config.prevResult !== undefined) {
    prevResult = parseResult({ cniVersion, ...config.prevResult }, "$.prevResult");
  }
  const rawArgs = env.CNI_ARGS ?? "";
  const cniArgs = parseCniArgs(rawArgs);
  if ((command === "ADD" || command === "CHECK") && info.checkNetnsExists !== false) {
    try {
      // Synchronous: an asynchronous stat would start libuv's thread pool (4 threads) for this one call,
      // and node:fs/promises would drag the stream stack into every start; a stat of a namespace path
      // never blocks for long.
      statSync(netns);
    } catch (e) {
      throw new CniError(CniErrorCode.UnknownContainer, "network namespace does not exist", {
        details: `CNI_NETNS=${netns}`,
        cause: e,
      });
    }
  }
  const args: CmdArgs = {
    command: command as CmdArgs["command"],
    containerId,
    netns,
    ifname,
    args: rawArgs,
    cniArgs,
    path,
    stdin,
    config,
    cniVersion,
    prevResult,
    signal,
  };
  if (command === "ADD") {
    const result = await handlers.add(args);
    let checked: CniResult;
    try {
      checked = parseResult({ ...result, cniVersion: "1.1.0" }, "$result");
    } catch (e) {
      throw new CniError(CniErrorCode.Internal, "plugin produced an invalid result", {
        details: e instanceof Error ? e.message : String(e),
        cause: e,
      });
    }
    return `${JSON.stringify(convertResult(checked, cniVersion))}\n`;
  }
  if (command === "DEL") await handlers.del(args);
  else await handlers.check(args);
  return "";
}

function versionAskedFor(stdin: Buffer): string | undefined {
  try {
    const v = JSON.parse(stdin.toString("utf8")) as { cniVersion?: unknown };
    return typeof v?.cniVersion === "string" ? v.cniVersion : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads fd 0 synchronously up to `maxBytes + 1` bytes. A plugin's stdin is a pipe or file the runtime
 * closes after writing, so blocking reads are safe and skip the stream machinery a `process.stdin`
 * socket would load (several ms of every plugin start). Returns undefined when fd 0 cannot be read
 * synchronously (a TTY or non-blocking descriptor), so the caller falls back to the stream.
 */
function readStdinSync(maxBytes: number): Buffer | undefined {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(64 * 1024);
    let n: number;
    try {
      n = readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EAGAIN" || code === "EWOULDBLOCK" || code === "EISDIR" || code === "EINVAL") {
        return total === 0 ? undefined : Buffer.concat(chunks, total);
      }
      if (code === "EOF") break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
    total += n;
    if (total > maxBytes) break; // readLimited reports the overflow
  }
  return Buffer.concat(chunks, total);
}

/**
 * The `main` of a plugin executable: runs {@link runPlugin} on `process.env` and stdin, writes
 * stdout/stderr, and exits with its status. SIGTERM aborts the handlers' signal.
 */
export async function pluginMain(handlers: PluginHandlers, info: PluginInfo = {}): Promise<never> {
  const ac = new AbortController();
  process.once("SIGTERM", () => ac.abort(new Error("SIGTERM")));
  const max = info.maxStdinBytes ?? DEFAULT_MAX_STDIN_BYTES;
  let stdin: PluginInput;
  try {
    stdin = readStdinSync(max) ?? process.stdin;
  } catch {
    stdin = process.stdin;
  }
  const outcome = await runPlugin(handlers, info, { env: process.env, stdin, signal: ac.signal });
  if (outcome.stderr !== "") writeAll(2, outcome.stderr);
  if (outcome.stdout !== "") writeAll(1, outcome.stdout);
  process.exit(outcome.exitCode);
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EAGAIN") continue;
      return; // the reader went away: nothing left to tell
    }
  }
}
