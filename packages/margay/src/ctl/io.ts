/**
 * The process around a command, as data: streams, environment, TTY-ness and colour. Tests and the docs
 * generator build one without a process; `main.ts` builds the real one.
 *
 * @packageDocumentation
 */

import type { Style } from "./output.js";

/** What a command may touch of its process. */
export interface CtlIo {
  /** Writes to standard output. */
  out(text: string): void;
  /** Writes to standard error. */
  err(text: string): void;
  /** Reads all of standard input (for `-f -`). */
  readStdin(): Promise<string>;
  /** The environment (config variables). */
  env: NodeJS.ProcessEnv;
  /** True when standard output is a terminal (tables with colour, progress on stderr). */
  isTTY: boolean;
  /** Colours (identity when off: not a TTY, or NO_COLOR). */
  style: Style;
  /** The working directory relative paths are read from. */
  cwd: string;
}
