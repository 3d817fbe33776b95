/**
 * The one logging seam of Margay's libraries: pino's call shape, so a pino logger (or a child of one) is
 * passed in as is. Libraries default to {@link silentLogger}; messages are constant, values go in the
 * attributes object.
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

/**
 * A structured logger, pino-shaped. `child(bindings)` returns a logger whose records carry `bindings`
 * (e.g. `logger.child({ component: "datastore" })`).
 */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child(bindings: LogAttributes): Logger;
}

/** The levels of {@link Logger}, least severe first. */
export const LOG_LEVELS = Object.freeze(["trace", "debug", "info", "warn", "error"] as const);

/** A level of {@link Logger}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

const noop = (): void => {};

/** A logger that drops everything: the default of every library. */
export const silentLogger: Logger = Object.freeze({
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
});

/** One record a {@link RecordingLogger} kept: the child bindings merged with the call's attributes. */
export interface LogRecord {
  readonly level: LogLevel;
  readonly message: string | undefined;
  readonly attributes: Readonly<LogAttributes>;
}

/** A logger that keeps its records (and its children's) in memory: for tests and for embedding. */
export interface RecordingLogger extends Logger {
  /** Every record so far, oldest first, children included. */
  readonly records: readonly LogRecord[];
  /** The records of one level, or with one message. */
  find(filter: { level?: LogLevel; message?: string }): LogRecord[];
  /** Forgets the records. */
  clear(): void;
}

/** Creates a {@link RecordingLogger}. */
export function createRecordingLogger(): RecordingLogger {
  const records: LogRecord[] = [];
  const make = (bindings: LogAttributes): Logger => {
    const method =
      (level: LogLevel): LogFn =>
      (first: LogAttributes | string, message?: string): void => {
        if (typeof first === "string") {
          records.push({ level, message: first, attributes: { ...bindings } });
        } else {
          records.push({ level, message, attributes: { ...bindings, ...first } });
        }
      };
    return {
      trace: method("trace"),
      debug: method("debug"),
      info: method("info"),
      warn: method("warn"),
      error: method("error"),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  const root = make({});
  return {
    ...root,
    get records() {
      return records;
    },
    find(filter) {
      return records.filter(
        (r) =>
          (filter.level === undefined || r.level === filter.level) &&
          (filter.message === undefined || r.message === filter.message),
      );
    },
    clear() {
      records.length = 0;
    },
  };
}
