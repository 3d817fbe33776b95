import { spawn } from "node:child_process";
import { DataplaneError, DataplaneErrorCode, throwIfAborted } from "../errors.js";

/** Options of one {@link CommandRunner.run} call. */
export interface RunOptions {
  /** Bytes written to the child's stdin, then closed (for `ip -batch -`, `nft -f -`). */
  readonly stdin?: string | undefined;
  /** Aborts the command (SIGTERM) and rejects with `aborted`. */
  readonly signal?: AbortSignal | undefined;
  /** Exit codes that are not failures. Default: `[0]`. */
  readonly okCodes?: readonly number[] | undefined;
}

/** Result of a command. */
export interface RunResult {
  /** Exit code. */
  readonly code: number;
  /** Standard output (UTF-8). */
  readonly stdout: string;
  /** Standard error (UTF-8). */
  readonly stderr: string;
}

/** A long-lived child process driven over its standard streams (see {@link CommandRunner.start}). */
export interface RunningCommand {
  /** Writes to the child's stdin. */
  write(text: string): void;
  /** Called with each chunk the child writes to stderr (UTF-8). */
  onStderr(listener: (chunk: string) => void): void;
  /** Called once when the child has exited (or could not be started). */
  onExit(listener: (code: number | null) => void): void;
  /** Ends the child (SIGTERM); `onExit` listeners run when it is gone. */
  kill(): void;
  /**
   * Whether the child keeps the event loop alive: `true` while the caller waits on it, `false` while it
   * idles (an idle helper must not keep the agent's process running). Starts `false`.
   */
  hold(busy: boolean): void;
}

/**
 * Runs one external command from an argument array; never a shell string. The seam through which every
 * kernel change flows, so unit tests can record argv without touching the kernel.
 */
export interface CommandRunner {
  /** Runs `argv[0]` with `argv.slice(1)`; rejects with `command-failed` on a non-OK exit code. */
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  /**
   * Starts `argv` as a long-lived process (e.g. `ip -batch -` fed line by line). Optional: callers fall
   * back to one {@link CommandRunner.run} per call when a runner does not offer it.
   */
  start?(argv: readonly string[]): RunningCommand;
}

/** A {@link CommandRunner} that spawns real processes (`child_process.spawn`, no shell). */
export function createProcessRunner(): CommandRunner {
  return {
    start(argv) {
      const [file, ...args] = argv;
      if (file === undefined) throw new DataplaneError(DataplaneErrorCode.InvalidOptions, "empty argv");
      const child = spawn(file, args, { stdio: ["pipe", "ignore", "pipe"] });
      type Refable = { ref?: () => void; unref?: () => void };
      const handles = [child, child.stdin, child.stderr] as unknown as Refable[];
      const hold = (busy: boolean) => {
        for (const h of handles) (busy ? h.ref : h.unref)?.call(h);
      };
      hold(false);
      child.stdin.on("error", () => {
        // EPIPE after the child died: the exit listener reports it.
      });
      const exits: ((code: number | null) => void)[] = [];
      let exited = false;
      const exit = (code: number | null) => {
        if (exited) return;
        exited = true;
        for (const l of exits) l(code);
      };
      child.on("error", () => exit(null));
      child.on("close", (code) => exit(code));
      return {
        write(text) {
          if (!exited) child.stdin.write(text);
        },
        onStderr(listener) {
          child.stderr.on("data", (b: Buffer) => listener(b.toString("utf8")));
        },
        onExit(listener) {
          if (exited) listener(child.exitCode);
          else exits.push(listener);
        },
        kill() {
          if (!exited) child.kill("SIGTERM");
        },
        hold,
      };
    },
    run(argv, options = {}) {
      throwIfAborted(options.signal);
      const [file, ...args] = argv;
      if (file === undefined) {
        return Promise.reject(new DataplaneError(DataplaneErrorCode.InvalidOptions, "empty argv"));
      }
      return new Promise<RunResult>((resolve, reject) => {
        const child = spawn(file, args, {
          stdio: ["pipe", "pipe", "pipe"],
          ...(options.signal === undefined ? {} : { signal: options.signal }),
        });
        const out: Buffer[] = [];
        const err: Buffer[] = [];
        child.stdout.on("data", (b: Buffer) => out.push(b));
        child.stderr.on("data", (b: Buffer) => err.push(b));
        child.stdin.on("error", () => {
          // EPIPE when the child exits before reading all input: the exit code tells the story.
        });
        child.on("error", (e: NodeJS.ErrnoException) => {
          if (e.name === "AbortError") {
            reject(
              new DataplaneError(DataplaneErrorCode.Aborted, "command aborted", {
                cause: e,
                details: { argv },
              }),
            );
          } else {
            reject(
              new DataplaneError(DataplaneErrorCode.CommandFailed, "command could not be started", {
                cause: e,
                details: { argv },
              }),
            );
          }
        });
        child.on("close", (code) => {
          const result = {
            code: code ?? -1,
            stdout: Buffer.concat(out).toString("utf8"),
            stderr: Buffer.concat(err).toString("utf8"),
          };
          if ((options.okCodes ?? [0]).includes(result.code)) resolve(result);
          else
            reject(
              new DataplaneError(
                DataplaneErrorCode.CommandFailed,
                `command failed: ${describe(argv, result)}`,
                {
                  retryable: true,
                  details: { argv, exitCode: result.code, stderr: result.stderr.slice(0, 4000) },
                },
              ),
            );
        });
        child.stdin.end(options.stdin ?? "");
      });
    },
  };
}

function describe(argv: readonly string[], r: RunResult): string {
  const cmd = argv.slice(0, 8).join(" ");
  const err = r.stderr.trim().split("\n").slice(0, 3).join(" | ");
  return `${cmd}${argv.length > 8 ? " ..." : ""} (exit ${r.code})${err === "" ? "" : `: ${err}`}`;
}
