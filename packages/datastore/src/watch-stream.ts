/**
 * The consumer side of a watch, shared by the backends: a bounded queue exposed as an async iterable.
 *
 * The queue is bounded because a watcher that stops reading must not grow memory without limit: when it
 * overflows, the watch fails with `compacted` (reason `slow-consumer`), which tells the caller the same
 * thing a real compaction does: relist, then watch from the list's revision.
 */

import { compactedError } from "./errors.js";
import type { StoredObject, WatchEvent } from "./types.js";
import { EventQueue, WatchBase } from "./watch-base.js";

/** Options of a {@link WatchStream}. */
export interface WatchStreamOptions {
  /** Events buffered before the watch fails with `compacted`. */
  queueLimit: number;
  /** Called once when the watch stops for any reason (close, abort, failure, end of iteration). */
  onStop: () => void | Promise<void>;
  signal?: AbortSignal | undefined;
  backend: string;
}

/** A bounded event queue with the `Watch` interface. */
export class WatchStream<T extends StoredObject = StoredObject> extends WatchBase<T> {
  readonly #queue = new EventQueue<WatchEvent<T>>();
  readonly #queueLimit: number;
  readonly #backend: string;

  constructor(opts: WatchStreamOptions) {
    super({ signal: opts.signal, onStop: opts.onStop });
    this.#queueLimit = opts.queueLimit;
    this.#backend = opts.backend;
  }

  /** Number of events waiting to be read. */
  get pending(): number {
    return this.#queue.size;
  }

  /** Queues events; fails the watch with `compacted` if the queue would exceed its limit. */
  push(events: readonly WatchEvent<T>[]): void {
    if (this.stopped || events.length === 0) return;
    if (this.pending + events.length > this.#queueLimit) {
      this.fail(compactedError({ reason: "slow-consumer", backend: this.#backend }));
      return;
    }
    for (const e of events) this.#queue.push(e);
    this.notify();
  }

  protected override take(): WatchEvent<T> | undefined {
    return this.#queue.shift();
  }

  protected override drop(): void {
    this.#queue.clear();
  }
}
