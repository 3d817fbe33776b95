/**
 * The runtime's logging seam: the same pino shape as `@margay/api`'s `Logger` (this package imports nothing
 * of ours, so it declares its own; a test in `@margay/margay` holds the two shapes equal). A pino logger,
 * or a child of one, is passed in as is.
 *
 * @packageDocumentation
 */

/** Structured attributes of one log record (pino's "merging object"). */
export type LogAttributes = Record<string, unknown>;

/** One level's method: attributes first and a constant message, or a message alone (pino's overloads). */
export interface LogFn {
  (attributes: LogAttributes, message?: string): void;
  (message: string): void;
}

/** A structured logger, pino-shaped; `child(bindings)` returns a logger whose records carry `bindings`. */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: LogAttributes): Logger;
}

const noop = (): void => {};

/** A logger that drops everything: the runtime's default. */
export const silentLogger: Logger = Object.freeze({
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
});
