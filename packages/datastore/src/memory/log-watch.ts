/**
 * A watch of the memory backend as a cursor into the store's one event log, instead of a queue of its
 * own: every watcher reads the same shared, frozen events where the store keeps them, so a burst queued
 * to a thousand watchers costs the log once plus a cursor per watcher, not a reference per event per
 * watcher (#20: 80 MB for 10,000 events to 1,000 watchers).
 *
 * What a watcher sees is what {@link WatchStream} gives: the events of its filter in revision order, at
 * most `queueLimit` of them unread (beyond that it fails with `compacted`, reason `slow-consumer`,
 * after delivering the ones it had), queued events delivered before a failure, dropped by `close()`.
 * The store bounds what a cursor holds in the log: a watch that falls more than the history limit behind
 * in the log (even with few events of its own unread) gets its unread events copied out
 * ({@link LogWatch.spill}), as its own queue held them before, and the log forgets what no one needs.
 */

import { compactedError } from "../errors.js";
import type { StoredObject, WatchEvent } from "../types.js";
import { EventQueue, WatchBase } from "../watch-base.js";

/** What a {@link LogWatch} reads from its store. */
export interface EventLog {
  /**
   * The event at absolute position `seq` of the log (see {@link LogWatch.cursor}) if it is one for
   * `watch` (its kind, namespace, after its start revision), else undefined.
   */
  eventFor(watch: LogWatch, seq: number): WatchEvent | undefined;
}

/** Options of a {@link LogWatch}. */
export interface LogWatchOptions {
  kind: string;
  namespace: string | undefined;
  /** Only changes after this revision are delivered (it may still be in the future, as etcd allows). */
  after: number;
  /** Log position of the first event the watch may read. */
  from: number;
  /** Unread events allowed before the watch fails with `compacted` (slow consumer). */
  queueLimit: number;
  log: EventLog;
  backend: string;
  signal?: AbortSignal | undefined;
  /** Called once when the watch stops for any reason (close, abort, failure, end of iteration). */
  onStop: () => void;
}

/**
 * A watch reading the store's shared event log through a cursor (see the module comment). It reads the
 * log while it is not {@link LogWatch.stopped}; once failed or closed, what is left is in its spill.
 */
export class LogWatch<T extends StoredObject = StoredObject> extends WatchBase<T> {
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly after: number;
  /** Events copied out of the log (on failure, or when the watch lagged far behind), read first. */
  readonly #spilled = new EventQueue<WatchEvent>();
  /** Next log position to read; the log keeps every event from the smallest cursor of its watches. */
  #cursor: number;
  /** Log position up to which (exclusive) events were handed to this watch. */
  #end: number;
  /** Events handed to this watch and not read yet (spilled ones included). */
  #pending = 0;
  readonly #queueLimit: number;
  readonly #log: EventLog;
  readonly #backend: string;

  constructor(opts: LogWatchOptions) {
    super({ signal: opts.signal, onStop: opts.onStop });
    this.kind = opts.kind;
    this.namespace = opts.namespace;
    this.after = opts.after;
    this.#cursor = opts.from;
    this.#end = opts.from;
    this.#queueLimit = opts.queueLimit;
    this.#log = opts.log;
    this.#backend = opts.backend;
  }

  /** The log position this watch still needs (the store keeps the log from its smallest cursor). */
  get cursor(): number {
    return this.stopped ? Number.POSITIVE_INFINITY : this.#cursor;
  }

  /** Number of events waiting to be read. */
  get pending(): number {
    return this.#pending;
  }

  /**
   * The log grew to `end` (exclusive), `added` of the new events being for this watch. Fails the watch
   * (slow consumer) instead when they would leave more than `queueLimit` unread.
   */
  advance(end: number, added: number): void {
    if (this.stopped) return;
    if (added === 0) {
      // None of the new events is for this watch; with none of its unread events left in the log (all
      // read, or spilled), the cursor moves to the tip and holds nothing in the log.
      this.#end = end;
      if (this.#pending === this.#spilled.size) this.#cursor = end;
      return;
    }
    if (this.#pending + added > this.#queueLimit) {
      this.fail(compactedError({ reason: "slow-consumer", backend: this.#backend }));
      return;
    }
    this.#pending += added;
    this.#end = end;
    this.notify();
  }

  /** Copies this watch's unread events out of the log, so the log need not keep them for it. */
  spill(): void {
    if (this.stopped) return;
    this.#spilled.compact();
    for (let s = this.#cursor; s < this.#end; s++) {
      const ev = this.#log.eventFor(this, s);
      if (ev !== undefined) this.#spilled.push(ev);
    }
    this.#cursor = this.#end;
  }

  /** Fails the watch: events handed to it are still delivered, then iteration throws `error`. */
  override fail(error: unknown): void {
    if (this.stopped) return;
    // Spilled while still reading the log: a failed watch reads only its spill.
    this.spill();
    super.fail(error);
  }

  protected override take(): WatchEvent<T> | undefined {
    const spilled = this.#spilled.shift();
    if (spilled !== undefined) {
      this.#pending--;
      return spilled as WatchEvent<T>;
    }
    while (!this.stopped && this.#cursor < this.#end) {
      const ev = this.#log.eventFor(this, this.#cursor++);
      if (ev !== undefined) {
        this.#pending--;
        return ev as WatchEvent<T>;
      }
    }
    return undefined;
  }

  protected override drop(): void {
    this.#spilled.clear();
    this.#pending = 0;
  }
}
