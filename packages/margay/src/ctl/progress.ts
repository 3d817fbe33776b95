/**
 * Progress for anything that takes more than a moment: on a terminal, a command still running after
 * {@link PROGRESS_DELAY_MS} shows one status line on stderr (what runs, seconds elapsed), refreshed in
 * place and erased before any output and at the end. Off a terminal nothing is written, so piped output
 * and scripts see exactly the command's output.
 *
 * @packageDocumentation
 */

import type { CtlIo } from "./io.js";

/** How long a command runs before its progress line appears, ms. */
export const PROGRESS_DELAY_MS = 700;
/** How often the line is refreshed, ms. */
export const PROGRESS_INTERVAL_MS = 250;

const FRAMES = ["|", "/", "-", "\\"];
const ERASE = "\r\x1b[K";

/** A running progress line; {@link Progress.io} is the command's io with writes that erase it first. */
export interface Progress {
  readonly io: CtlIo;
  /** Erases the line and stops the timers. Idempotent. */
  stop(): void;
}

/** Starts a progress line labelled `label` (e.g. `ipam check`) over `io`. */
export function startProgress(io: CtlIo, label: string, now: () => number = Date.now): Progress {
  if (!io.isTTY) return { io, stop() {} };
  const started = now();
  let shown = false;
  let frame = 0;
  const erase = () => {
    if (shown) {
      io.err(ERASE);
      shown = false;
    }
  };
  const draw = () => {
    const seconds = Math.floor((now() - started) / 1000);
    io.err(`${ERASE}${FRAMES[frame++ % FRAMES.length]} ${label} ${io.style.dim(`${seconds}s`)}`);
    shown = true;
  };
  let interval: ReturnType<typeof setInterval> | undefined;
  const delay = setTimeout(() => {
    draw();
    interval = setInterval(draw, PROGRESS_INTERVAL_MS);
    interval.unref?.();
  }, PROGRESS_DELAY_MS);
  delay.unref?.();
  const wrapped: CtlIo = {
    ...io,
    out(text) {
      erase();
      io.out(text);
    },
    err(text) {
      erase();
      io.err(text);
    },
  };
  return {
    io: wrapped,
    stop() {
      clearTimeout(delay);
      if (interval !== undefined) clearInterval(interval);
      erase();
    },
  };
}
