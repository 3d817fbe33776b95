/**
 * A running flow between two lab namespaces, counting drops: the check behind "no packet lost while the
 * agent restarts".
 *
 * @packageDocumentation
 */
import { PROBE_PORTS, type Probe } from "./probe.js";

/** What a {@link FlowWatch} saw. */
export interface FlowReport {
  /** Datagrams sent. */
  readonly sent: number;
  /** Datagrams whose echo never came. */
  readonly lost: number;
  /** Longest run of consecutive losses. */
  readonly longestGap: number;
}

/** A running flow. */
export interface FlowWatch {
  /** Stops sending, waits for every outstanding echo and reports. */
  stop(): Promise<FlowReport>;
}

/**
 * Sends a UDP datagram from `from` to `to`'s echo port every `intervalMs` (default 50), each from a fresh
 * socket, without waiting for the previous echo. A kernel that drops a packet (a missing route, an empty
 * table) loses that datagram for good whatever the timeout; a loaded machine only delays the echo — so the
 * long timeout (default 5 s) keeps load from counting as loss, and every loss counted is a drop.
 */
export function watchFlow(
  from: Probe,
  to: string,
  options: { readonly intervalMs?: number; readonly timeoutMs?: number; readonly port?: number } = {},
): FlowWatch {
  const interval = options.intervalMs ?? 50;
  const timeout = options.timeoutMs ?? 5_000;
  const port = options.port ?? PROBE_PORTS.udp;
  const results: Promise<boolean>[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      results.push(from.probe("udp", to, port, timeout).catch(() => false));
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
