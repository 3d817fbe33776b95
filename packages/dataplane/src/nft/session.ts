import { DataplaneError, DataplaneErrorCode, throwIfAborted } from "../errors.js";
import type { KernelCallOptions } from "../kernel/iproute.js";
import { type NetnsHandle, inNetns, netnsLabel } from "../kernel/netns.js";
import type { CommandRunner, RunningCommand } from "../kernel/runner.js";

/**
 * One long-lived `nft -i` process for a namespace: a one-shot `nft -f` pays a process start and a
 * namespace entry per change. The process does NOT keep nft's cache across our transactions: nft drops
 * it whenever the ruleset generation moved, and each commit of ours moves it, so every transaction
 * refills what its commands need (nft 1.0.6 `nft_cache_update`; nothing of ours reads the ruleset back).
 * What that costs depends on the commands: `add element` and `delete element` list every set of the
 * namespace (plus every chain when a verdict names one, and the elements of every interval set), which
 * grows with the ruleset; a set or map declaration with elements, `add chain` and `flush chain` list
 * only the tables. So the renderer writes additions as declarations (see `addElements` in render.ts) and
 * a new pod costs about the same at 3,000 endpoints as at 100; a removal's `delete element` still pays
 * the set listing.
 *
 * Atomicity is nft's: each line `nft -i` reads is one netlink batch, committed or aborted as a whole, so a
 * transaction is written as ONE line (its commands joined with `;`).
 */
export interface NftSession {
  /**
   * Runs `text` (newline-separated nft commands, none spanning lines) as one atomic transaction. Rejects
   * with `nftables-rejected` and nft's message if nft refused it (nothing changed), with `command-failed`
   * (retryable) if the process died, with `aborted` on abort. After the latter two the kernel may or may
   * not hold the transaction: the caller must not assume either.
   */
  run(text: string, options?: KernelCallOptions): Promise<void>;
  /** Ends the process. A later `run` starts a new one. */
  close(): void;
}

/**
 * The end-of-transaction marker: a line nft's parser rejects before it reads the kernel or changes
 * anything. nft echoes the offending line on stderr, so seeing it tells that every line before it has been
 * processed. Numbered, so a late report of an earlier transaction is never read as this one's.
 */
const MARKER = "@margay-nft-end-";
const SYNTAX_ERROR = /^Error: syntax error, unexpected @/;
const CARETS = /^\s*\^[\^~]*\s*$/;

interface Pending {
  readonly id: number;
  resolve(): void;
  reject(e: unknown): void;
}

/** Options of {@link createNftSession}. */
export interface NftSessionOptions {
  /**
   * After this many bytes of transactions the process is ended once its transaction is answered, and
   * the next `run` starts a fresh one. `nft -i` keeps every distinct line it reads as command-line
   * history for as long as it runs, so a process that lived for the agent's life would grow by every
   * transaction it was ever sent. Default 8 MiB (one process start per some ten thousand pod changes).
   */
  readonly recycleBytes?: number | undefined;
}

/** Default of {@link NftSessionOptions.recycleBytes}. */
const RECYCLE_BYTES = 8 << 20;

/**
 * `nft -i` reads `$HOME/.nft.history` when it starts and writes its whole history there when it ends:
 * the agent's transactions would pile up in root's home (megabytes, read again at every start). With
 * HOME=/dev/null the history file cannot be opened, which nft ignores.
 */
const NO_HISTORY = ["env", "HOME=/dev/null"];

/** Creates an {@link NftSession}; `undefined` if `runner` cannot keep a process (use `nft -f` then). */
export function createNftSession(
  runner: CommandRunner,
  ns: NetnsHandle,
  table: string,
  options: NftSessionOptions = {},
): NftSession | undefined {
  if (runner.start === undefined) return undefined;
  const start = runner.start.bind(runner);
  const argv = inNetns(ns, [...NO_HISTORY, "nft", "-i"]);
  const recycleBytes = options.recycleBytes ?? RECYCLE_BYTES;
  let written = 0;
  let proc: RunningCommand | undefined;
  let pending: Pending | undefined;
  let next = 0;
  let buffered = "";
  let lines: string[] = [];
  let afterMarker = false;
  let tail: Promise<unknown> = Promise.resolve();

  const died = (reason: string) => {
    const p = pending;
    pending = undefined;
    p?.reject(
      new DataplaneError(DataplaneErrorCode.CommandFailed, `nft session process ${reason}`, {
        retryable: true,
        details: { argv, netns: netnsLabel(ns), table },
      }),
    );
  };

  const onLine = (line: string) => {
    // The caret line under the previous marker's echo belongs to that marker.
    if (afterMarker) {
      afterMarker = false;
      if (CARETS.test(line)) return;
    }
    if (!line.startsWith(MARKER)) {
      lines.push(line);
      return;
    }
    afterMarker = true;
    const id = Number(line.slice(MARKER.length));
    // The marker's own "syntax error" line comes just before its echo.
    const last = lines.at(-1);
    if (last !== undefined && SYNTAX_ERROR.test(last)) lines.pop();
    const output = lines;
    lines = [];
    const p = pending;
    if (p === undefined || p.id !== id) return;
    pending = undefined;
    if (output.some((l) => l.startsWith("Error:"))) {
      const stderr = output.join("\n");
      p.reject(
        new DataplaneError(DataplaneErrorCode.NftablesRejected, "nftables rejected the transaction", {
          details: { table, stderr: stderr.slice(0, 4000) },
        }),
      );
    } else p.resolve();
  };

  const ensure = (): RunningCommand => {
    if (proc !== undefined) return proc;
    const child = start(argv);
    proc = child;
    written = 0;
    buffered = "";
    lines = [];
    afterMarker = false;
    child.onStderr((chunk) => {
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
      // A process we ended (aborted, recycled, closed) has answered for itself already: its exit must
      // not fail the transaction a newer process is running.
      if (proc !== child) return;
      proc = undefined;
      died(`exited (${code})`);
    });
    return child;
  };

  const runOne = (line: string, options: KernelCallOptions) =>
    new Promise<void>((resolve, reject) => {
      throwIfAborted(options.signal);
      const child = ensure();
      const id = next++;
      const onAbort = () => {
        const p = pending;
        pending = undefined;
        if (proc === child) proc = undefined;
        child.kill();
        p?.reject(new DataplaneError(DataplaneErrorCode.Aborted, "command aborted", { details: { argv } }));
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      child.hold(true);
      written += line.length;
      const done = () => {
        child.hold(false);
        options.signal?.removeEventListener("abort", onAbort);
        // Answered, so nothing is pending: the next transaction starts a fresh process.
        if (written >= recycleBytes && proc === child) {
          proc = undefined;
          child.kill();
        }
      };
      pending = {
        id,
        resolve: () => {
          done();
          resolve();
        },
        reject: (e) => {
          done();
          reject(e);
        },
      };
      child.write(`${line}\n${MARKER}${id}\n`);
    });

  return {
    run(text, options = {}) {
      const commands = text.split("\n").filter((l) => l.trim() !== "");
      if (commands.length === 0) return Promise.resolve();
      // One line, one netlink batch: the transaction is atomic as with `nft -f`.
      const run = tail.then(() => runOne(commands.join(" ; "), options));
      tail = run.catch(() => undefined);
      return run;
    },
    close() {
      const child = proc;
      proc = undefined;
      child?.kill();
      died("closed");
    },
  };
}
