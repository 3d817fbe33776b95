import { DataplaneError, DataplaneErrorCode } from "../errors.js";
import type { KernelCallOptions } from "../kernel/iproute.js";
import { type NetnsHandle, inNetns } from "../kernel/netns.js";
import type { CommandRunner } from "../kernel/runner.js";
import { type NftRenderOptions, type NftRuleset, diffRuleset, renderFull } from "./render.js";

/** Applies rendered rulesets with `nft -f -`, one atomic transaction per call. */
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
   * (see `renderRulesetDelta`); like {@link NftProgrammer.apply} otherwise.
   */
  applyDelta(next: NftRuleset, text: string, options?: KernelCallOptions): Promise<{ bytes: number }>;
  /** Deletes the table (teardown). */
  remove(options?: KernelCallOptions): Promise<void>;
}

/** Creates an {@link NftProgrammer} for `ns`. */
export function createNftProgrammer(
  runner: CommandRunner,
  ns: NetnsHandle,
  render: NftRenderOptions,
): NftProgrammer {
  let current: NftRuleset | undefined;
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
      const text =
        full || current === undefined ? renderFull(next, render) : diffRuleset(current, next, render);
      if (text !== "") await run(text, options);
      current = next;
      return { bytes: text.length };
    },
    async applyDelta(next, text, options = {}) {
      if (text !== "") await run(text, options);
      current = next;
      return { bytes: text.length };
    },
    async remove(options = {}) {
      await run(`add table inet ${render.table}\ndelete table inet ${render.table}\n`, options);
      current = undefined;
    },
  };
}
