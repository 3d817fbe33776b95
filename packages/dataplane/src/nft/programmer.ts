import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import type { KernelCallOptions } from "../kernel/iproute.js";
import { type NetnsHandle, inNetns } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import { type NftRenderOptions, type NftRuleset, diffRuleset, renderFull } from "./render.js";
import { createNftSession } from "./session.js";

/**
 * Applies rendered rulesets, one atomic transaction per call: a full replacement with `nft -f -`, a
 * difference through a long-lived `nft -i` session when the runner can keep one (see `session.ts`), so a
 * small change does not pay a process start and a cache fill over the whole table.
 */
export interface NftProgrammer {
  /** The last ruleset the kernel accepted (undefined before the first). */
  readonly current: NftRuleset | undefined;
  /**
   * Programs `next`: a full atomic replacement of the table when `full` (or nothing was applied yet),
   * otherwise the difference from the last accepted ruleset. If nft rejects the transaction nothing
   * changes in the kernel, `current` stays, and `nftables-rejected` is thrown with nft's message.
   */
  apply(next: NftRuleset, full: boolean, options?: KernelCallOptions): Promise<{ bytes: number }>;
  /**
   * Programs `next` with `text`, a difference from {@link NftProgrammer.current} rendered by the caller
   * (see `renderRulesetDelta`); like {@link NftProgrammer.apply} otherwise. `undo` runs when the
   * transaction fails, before the error is thrown: a delta rendered in place puts `current` back with it.
   */
  applyDelta(
    next: NftRuleset,
    text: string,
    options?: KernelCallOptions,
    undo?: () => void,
  ): Promise<{ bytes: number }>;
  /** Deletes the table (teardown). */
  remove(options?: KernelCallOptions): Promise<void>;
  /** Ends the long-lived `nft` process, if any (a later call starts a new one). */
  close(): void;
}

/** Options of {@link createNftProgrammer}. */
export interface NftProgrammerOptions {
  /** Apply differences through a long-lived `nft -i` process when the runner offers one. Default `true`. */
  readonly persistent?: boolean | undefined;
}

/** Differences larger than this go through `nft -f` (one line of this size is what a session reads). */
const SESSION_MAX_BYTES = 1 << 20;

/** Creates an {@link NftProgrammer} for `ns`. */
export function createNftProgrammer(
  runner: CommandRunner,
  ns: NetnsHandle,
  render: NftRenderOptions,
  options: NftProgrammerOptions = {},
): NftProgrammer {
  let current: NftRuleset | undefined;
  const session = (options.persistent ?? true) ? createNftSession(runner, ns, render.table) : undefined;
  // Set when a session transaction ended without an answer (process died, aborted): the kernel may or
  // may not hold it, so the next change replaces the whole table instead of trusting `current`.
  let uncertain = false;
  const runDelta = async (next: NftRuleset, text: string, options: KernelCallOptions) => {
    if (uncertain) {
      await run(renderFull(next, render), options);
      uncertain = false;
      return;
    }
    if (session === undefined || text.length > SESSION_MAX_BYTES) {
      await run(text, options);
      return;
    }
    try {
      await session.run(text, options);
    } catch (e) {
      if ((e as { code?: unknown }).code !== DataplaneErrorCode.NftablesRejected) uncertain = true;
      throw e;
    }
  };
  const run = async (text: string, options: KernelCallOptions) => {
    try {
      await runner.run(inNetns(ns, ["nft", "-f", "-"]), { stdin: text, signal: options.signal });
    } catch (e) {
      const details = (e as { details?: { stderr?: string } }).details;
      if (details?.stderr === undefined) throw e;
      throw new DataplaneError(DataplaneErrorCode.NftablesRejected, "nftables rejected the transaction", {
        cause: e,
        details: { table: render.table, stderr: details.stderr.slice(0, 4000), bytes: text.length },
      });
    }
  };
  return {
    get current() {
      return current;
    },
    async apply(next, full, options = {}) {
      if (full || current === undefined || uncertain) {
        const text = renderFull(next, render);
        await run(text, options);
        uncertain = false;
        current = next;
        return { bytes: text.length };
      }
      const text = diffRuleset(current, next, render);
      if (text !== "") await runDelta(next, text, options);
      current = next;
      return { bytes: text.length };
    },
    async applyDelta(next, text, options = {}, undo) {
      try {
        if (text !== "" || uncertain) await runDelta(next, text, options);
      } catch (e) {
        undo?.();
        throw e;
      }
      current = next;
      return { bytes: text.length };
    },
    async remove(options = {}) {
      await run(`add table inet ${render.table}\ndelete table inet ${render.table}\n`, options);
      current = undefined;
      uncertain = false;
    },
    close() {
      session?.close();
    },
  };
}
