/**
 * What every command action gets: the process (`CtlIo`), the global flags, and the datastore, opened on
 * first use and closed when the action ends (even when it fails).
 *
 * @packageDocumentation
 */

import { configError, type DatastoreFlags, type ResolvedConfig, resolveConfig } from "./config.js";
import type { CtlIo } from "./io.js";
import { openSession, type Session } from "./session.js";

/** The context of one command run. */
export class CommandContext {
  readonly io: CtlIo;
  readonly flags: DatastoreFlags;
  #config: ResolvedConfig | undefined;
  #session: Promise<Session> | undefined;

  constructor(io: CtlIo, flags: DatastoreFlags) {
    this.io = io;
    this.flags = flags;
  }

  /** The resolved configuration (flags > environment > config file > default). */
  config(): ResolvedConfig {
    this.#config ??= resolveConfig(this.flags, this.io.env);
    return this.#config;
  }

  /** The datastore session, opened once. */
  session(): Promise<Session> {
    if (this.#session === undefined) {
      const config = this.config();
      this.#session = openSession(config.datastore).catch((e: unknown) => {
        throw configError(e, config.sources);
      });
    }
    return this.#session;
  }

  /** Closes the session if one was opened. */
  async close(): Promise<void> {
    if (this.#session === undefined) return;
    const s = await this.#session.catch(() => undefined);
    await s?.close();
  }
}
