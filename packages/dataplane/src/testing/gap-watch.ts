import type { ProbeAgent } from "./probe-agent.js";

/** Options of {@link watchForGaps}. */
export interface GapWatchOptions {
  /** Time between datagrams. Default 10 ms. */
  readonly intervalMs?: number | undefined;
  /** How long each datagram's echo may take. Default 5 000 ms. */
  readonly timeoutMs?: number | undefined;
}

/** What a {@link GapWatch} saw. */
export interface GapReport {
  /** Datagrams sent. */
  readonly sent: number;
  /** Datagrams whose echo never came. */
  readonly lost: number;
  /** Longest run of consecutive losses. */
  readonly longestGap: number;
}

/** A running stream of probes. */
export interface GapWatch {
  /** Stops sending, waits for every outstanding echo and reports. */
  stop(): Promise<GapReport>;
}

/**
 * Sends a UDP datagram from `agent` to `host:port` (an echo port) every `intervalMs`, each from a fresh
 * socket (a new flow that policy and routing see afresh), without waiting for the previous answer.
 *
 * Why UDP with a long timeout rather than TCP connects: a kernel that drops packets (a missing route, a
 * table briefly empty) loses a datagram for good, whatever the timeout; a loaded machine only delays the
 * echo. TCP would hide a short gap behind SYN retransmission and would confuse a slow scheduler with a
 * gap. So every loss counted here is a drop, and a long timeout keeps load from counting as one.
 */
export function watchForGaps(
  agent: ProbeAgent,
  host: string,
  port: number,
  options: GapWatchOptions = {},
): GapWatch {
  const interval = options.intervalMs ?? 10;
  const timeout = options.timeoutMs ?? 5000;
  const results: Promise<boolean>[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      results.push(agent.probe("udp", host, port, timeout));
      await new Promise((r) => setTimeout(r, interval));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const got = await Promise.all(results);
      let lost = 0;
      let run = 0;
      let longestGap = 0;
      for (const ok of got) {
        if (ok) run = 0;
        else {
          lost++;
          run++;
          longestGap = Math.max(longestGap, run);
        }
      }
      return { sent: got.length, lost, longestGap };
    },
  };
}
