import { DataplaneError, DataplaneErrorCode, isDataplaneError, throwIfAborted } from "../errors.js";
import type { KernelCallOptions } from "./iproute.js";
import { type NetnsHandle, ipArgv, netnsLabel } from "./netns.js";
import type { CommandRunner, RunningCommand } from "./runner.js";

/**
 * One long-lived `ip -force -batch -` process for a namespace, fed batch after batch over stdin: a small
 * change costs a few lines written to a pipe instead of a process start (and a namespace entry).
 */
export interface IpBatchSession {
  /**
   * Runs `lines` and resolves when `ip` has processed all of them. Rejects with `command-failed`
   * (retryable) listing the lines that failed (`-force` runs the rest), or if the process died.
   */
  run(lines: readonly string[], options?: KernelCallOptions): Promise<void>;
  /** Ends the process. Later `run` calls start a new one. */
  close(): void;
}

/**
 * The end-of-batch marker: an object `ip` does not know. It fails in the parser, touches no kernel
 * state, and `-force` reports it as `Command failed -:<line>` on stderr (stdout is block-buffered on a
 * pipe, stderr is not), which tells that every line before it has been run.
 */
const MARKER = "margay-batch-end";
const FAILED = /^Command failed -:(\d+)$/;

interface Pending {
  readonly first: number;
  readonly marker: number;
  readonly lines: readonly string[];
  readonly failed: { line: string; error: string }[];
  resolve(): void;
  reject(e: unknown): void;
}

const STALE_DEVICE = /No such device|Cannot find device/;

/** The failed lines of a batch when every failure is a device the process could not resolve. */
function staleDeviceLines(e: unknown): string[] | undefined {
  if (!isDataplaneError(e, DataplaneErrorCode.CommandFailed)) return undefined;
  const failed = e.details.failed as { line: string; error: string }[] | undefined;
  if (failed === undefined || failed.length === 0 || failed.length >= 50) return undefined;
  if (!failed.every((f) => f.line !== "" && STALE_DEVICE.test(f.error))) return undefined;
  return failed.map((f) => f.line);
}

/** Creates an {@link IpBatchSession}; `undefined` if `runner` cannot keep a process (then use `ipBatch`). */
export function createIpBatchSession(runner: CommandRunner, ns: NetnsHandle): IpBatchSession | undefined {
  if (runner.start === undefined) return undefined;
  const start = runner.start.bind(runner);
  const argv = ipArgv(ns, ["-force", "-batch", "-"]);
  let proc: RunningCommand | undefined;
  let lineNo = 0;
  let pending: Pending | undefined;
  let buffered = "";
  let errorText: string[] = [];
  let tail: Promise<unknown> = Promise.resolve();

  const fail = (reason: string, cause?: unknown) => {
    const p = pending;
    pending = undefined;
    p?.reject(
      new DataplaneError(DataplaneErrorCode.CommandFailed, `ip batch process ${reason}`, {
        retryable: true,
        cause,
        details: { argv, netns: netnsLabel(ns) },
      }),
    );
  };

  const onLine = (text: string) => {
    const m = FAILED.exec(text);
    if (m === null) {
      errorText.push(text);
      return;
    }
    const n = Number(m[1]);
    const p = pending;
    const error = errorText.join(" | ");
    errorText = [];
    if (p === undefined) return;
    if (n === p.marker) {
      pending = undefined;
      if (p.failed.length === 0) p.resolve();
      else {
        p.reject(
          new DataplaneError(
            DataplaneErrorCode.CommandFailed,
            `ip batch: ${p.failed.length} of ${p.lines.length} lines failed: ${p.failed[0]!.error}`,
            { retryable: true, details: { argv, netns: netnsLabel(ns), failed: p.failed.slice(0, 50) } },
          ),
        );
      }
    } else if (n >= p.first && n < p.marker) {
      p.failed.push({ line: p.lines[n - p.first] ?? "", error });
    }
  };

  const ensure = (): RunningCommand => {
    if (proc !== undefined) return proc;
    const child = start(argv);
    proc = child;
    lineNo = 0;
    buffered = "";
    errorText = [];
    child.onStderr((chunk) => {
      // Output of a process we already gave up on must not be read against the new one's line numbers.
      if (proc !== child) return;
      buffered += chunk;
      let i = buffered.indexOf("\n");
      while (i >= 0) {
        onLine(buffered.slice(0, i));
        buffered = buffered.slice(i + 1);
        i = buffered.indexOf("\n");
      }
    });
    child.onExit((code) => {
      // A process replaced on purpose (see `run`) has no batch of the current one.
      if (proc !== child) return;
      proc = undefined;
      fail(`exited (${code})`);
    });
    return child;
  };

  const runOne = (lines: readonly string[], options: KernelCallOptions) =>
    new Promise<void>((resolve, reject) => {
      throwIfAborted(options.signal);
      const child = ensure();
      const first = lineNo + 1;
      lineNo += lines.length + 1;
      const onAbort = () => {
        // Lines already read may have run; the process goes, like a killed one-shot `ip`.
        const p = pending;
        pending = undefined;
        child.kill();
        p?.reject(new DataplaneError(DataplaneErrorCode.Aborted, "command aborted", { details: { argv } }));
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      child.hold(true);
      const done = () => {
        child.hold(false);
        options.signal?.removeEventListener("abort", onAbort);
      };
      pending = {
        first,
        marker: lineNo,
        lines,
        failed: [],
        resolve: () => {
          done();
          resolve();
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      child.write(`${lines.join("\n")}\n${MARKER}\n`);
    });

  return {
    run(lines, options = {}) {
      if (lines.length === 0) return Promise.resolve();
      for (const l of lines) {
        if (l.includes("\n")) {
          return Promise.reject(
            new DataplaneError(DataplaneErrorCode.InvalidOptions, "a batch line holds a newline", {
              details: { line: l },
            }),
          );
        }
      }
      // One batch at a time: line numbers tie ip's error reports to the batch that caused them.
      const run = tail.then(async () => {
        try {
          await runOne(lines, options);
        } catch (e) {
          const stale = staleDeviceLines(e);
          if (stale === undefined) throw e;
          // iproute2 caches interface name → index for the life of the process: an interface deleted
          // and made again under the same name (a pod's veth when its attachment is added again) is "No
          // such device" to this process for ever, while a fresh one resolves it. So: a new process, and
          // the lines that failed so once more (every other line ran: -force).
          proc?.kill();
          proc = undefined;
          await runOne(stale, options);
        }
      });
      tail = run.catch(() => undefined);
      return run;
    },
    close() {
      proc?.kill();
      proc = undefined;
    },
  };
}
