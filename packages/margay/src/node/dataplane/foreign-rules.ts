/**
 * Reports foreign nftables base chains that can drop traffic before margay's table sees it (kube-proxy's
 * nftables tables, iptables-nft's `ip filter`, a host firewall). Report only: the agent never edits or
 * works around another owner's rules, and a finding does not make the node unready.
 *
 * @packageDocumentation
 */
import type { Logger } from "@margay/api";
import { describeFinding, type ForeignChainFinding } from "@margay/dataplane";

/** Default period between checks, ms. */
export const FOREIGN_RULES_INTERVAL_MS = 60_000;

/** Options of {@link createForeignRulesMonitor}. */
export interface ForeignRulesMonitorOptions {
  /** Reads the current findings (e.g. `readShadowingChains` over the agent's namespace). */
  readonly read: () => Promise<readonly ForeignChainFinding[]>;
  /** Where each new finding is logged (`warn`) and failed reads (`debug`). */
  readonly logger: Logger;
  /** Period between checks once started, ms. Default {@link FOREIGN_RULES_INTERVAL_MS}. */
  readonly intervalMs?: number | undefined;
}

/** The monitor: {@link ForeignRulesMonitor.start} after the first in-sync; `close()` at stop. */
export interface ForeignRulesMonitor {
  /** Checks now, then every interval (idempotent). */
  start(): void;
  /** Runs one check; resolves when it is done (never rejects). */
  check(): Promise<void>;
  /** The findings of the last successful check. */
  findings(): readonly ForeignChainFinding[];
  /** Stops the timer. */
  close(): void;
}

const keyOf = (f: ForeignChainFinding) =>
  `${f.family}/${f.table}/${f.chain}/${f.hook}/${f.priority}/${f.why}`;

/** Creates a {@link ForeignRulesMonitor}; nothing runs until `start()` or `check()`. */
export function createForeignRulesMonitor(options: ForeignRulesMonitorOptions): ForeignRulesMonitor {
  const intervalMs = options.intervalMs ?? FOREIGN_RULES_INTERVAL_MS;
  let current: readonly ForeignChainFinding[] = [];
  let timer: ReturnType<typeof setInterval> | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  const run = async () => {
    let next: readonly ForeignChainFinding[];
    try {
      next = await options.read();
    } catch (e) {
      // Not a dataplane fault: the check is advisory, so a failed read keeps the last findings.
      options.logger.debug({ err: e }, "foreign nftables rules check failed");
      return;
    }
    const seen = new Set(current.map(keyOf));
    for (const f of next) {
      if (seen.has(keyOf(f))) continue;
      options.logger.warn(
        {
          family: f.family,
          table: f.table,
          chain: f.chain,
          hook: f.hook,
          priority: f.priority,
          ourPriority: f.ourPriority,
          order: f.order,
          why: f.why,
          owner: f.owner,
          detail: describeFinding(f),
        },
        "foreign nftables chain may drop traffic margay allows",
      );
    }
    current = next;
  };

  const check = (): Promise<void> => {
    if (closed) return Promise.resolve();
    // One check at a time: a slow nft dump is not stacked.
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    start() {
      if (closed || timer !== undefined) return;
      void check();
      timer = setInterval(() => void check(), intervalMs);
      timer.unref?.();
    },
    check,
    findings: () => current,
    close() {
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
