/**
 * Executes a plugin with an exact environment and stdin, without any of the runtime's help, so the kit
 * can feed it malformed input and observe exactly what it prints and how it exits.
 *
 * @packageDocumentation
 */

import { spawn } from "node:child_process";
import { withLauncher } from "../runtime/exec-plugin.js";

/** What a raw execution observed. */
export interface RawExecResult {
  /** Exit status (null if killed). */
  exitCode: number | null;
  /** Stdout text. */
  stdout: string;
  /** Stderr text. */
  stderr: string;
}

/** Options of {@link rawExec}. */
export interface RawExecOptions {
  /** Kill after this long. Default: 60 000 ms. */
  timeoutMs?: number | undefined;
  /** Command prefix (see `ExecOptions.launcher`). */
  launcher?: readonly string[] | undefined;
}

/** Runs `bin` with exactly `env` and `stdin`; kills it after `timeoutMs`. */
export function rawExec(
  bin: string,
  env: Readonly<Record<string, string>>,
  stdin: string | Uint8Array,
  options: RawExecOptions = {},
): Promise<RawExecResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const [file, argv] = withLauncher(bin, options.launcher);
    const child = spawn(file, argv, { env: { ...env }, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({
        exitCode: code,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
  });
}
