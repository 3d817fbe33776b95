/**
 * The logging seam: a pino-compatible subset. Libraries default to silent.
 *
 * @packageDocumentation
 */

/** A structured logger (pino's call shape): attributes first, then a constant message. */
export interface Logger {
  debug(attributes: Record<string, unknown>, message: string): void;
  info(attributes: Record<string, unknown>, message: string): void;
  warn(attributes: Record<string, unknown>, message: string): void;
  error(attributes: Record<string, unknown>, message: string): void;
}

const noop = (): void => {};

/** A logger that drops everything (the default). */
export const silentLogger: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
