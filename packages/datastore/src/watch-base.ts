/**
 * What every backend's watch shares, whatever holds its unread events: the abort signal wiring, waking a
 * waiting reader, failing with queued events still delivered first, closing (which drops them), stopping
 * once with `onStop`, and the async iterator. A backend's watch says only where its next event comes from
 * ({@link WatchBase.take}) and what closing drops ({@link WatchBase.drop}): the etcd backend's
 * `WatchStream` keeps a queue of its own, the memory backend's `LogWatch` a cursor into the store's
 * shared event log.
 */

import type { StoredObject, Watch, WatchEvent } from "./types.js";

/** Options of a {@link WatchBase}. */
export interface WatchBaseOptions {
  /** Aborting it closes the watch; an already-aborted one makes a watch that delivers nothing. */
  signal?: AbortSignal | undefined;
  /** Called once when the watch stops for any reason (close, abort, failure, end of iteration). */
  onStop: () => void | Promise<void>;
}

/**
 * The lifecycle of a {@link Watch}; a subclass holds the unread events and calls {@link WatchBase.notify}
 * when it has new ones.
 */
export abstract class WatchBase<T extends StoredObject = StoredObject> implements Watch<T> {
  #error: unknown = undefined;
  #ended = false;
  #stopped = false;
  #stopPromise: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  readonly #opts: WatchBaseOptions;
  readonly #onAbort = () => void this.close();

  constructor(opts: WatchBaseOptions) {
    this.#opts = opts;
    if (opts.signal?.aborted) {
      this.#ended = true;
      queueMicrotask(() => void this.#stop());
    } else {
      opts.signal?.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** True once the watch can deliver nothing more (ended, failed or closed). */
  get stopped(): boolean {
    return this.#ended || this.#error !== undefined;
  }

  /** Fails the watch: queued events are still delivered, then iteration throws `error`. */
  fail(error: unknown): void {
    if (this.stopped) return;
    this.#error = error;
    this.notify();
    void this.#stop();
  }

  /**
   * Closes the watch: queued events are dropped and iteration ends, by throwing the failure if the watch
   * had failed before.
   */
  close(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      this.drop();
      this.notify();
    }
    return this.#stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent<T>> {
    try {
      for (;;) {
        const ev = this.take();
        if (ev !== undefined) {
          yield ev;
          continue;
        }
        // A failure is thrown even after a close: the reader learns why the watch stopped.
        if (this.#error !== undefined) throw this.#error;
        if (this.#ended) return;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
        });
      }
    } finally {
      // A consumer that breaks out of `for await` is done with the watch.
      await this.close();
    }
  }

  /** The next unread event, or undefined when there is none now (always so once closed). */
  protected abstract take(): WatchEvent<T> | undefined;

  /** Forgets the unread events: the watch is being closed. */
  protected abstract drop(): void;

  /** Wakes a reader waiting for an event: one is there now, or the watch failed or closed. */
  protected notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #stop(): Promise<void> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.#opts.signal?.removeEventListener("abort", this.#onAbort);
      this.#stopPromise = Promise.resolve()
        .then(() => this.#opts.onStop())
        .catch(() => undefined);
    }
    return this.#stopPromise ?? Promise.resolve();
  }
}

/**
 * A first-in first-out list of events. Reading moves a head instead of shifting the array (which costs
 * its length each time); the part read is cut off once it is most of the array.
 */
export class EventQueue<E> {
  #items: E[] = [];
  #head = 0;

  /** Events not read yet. */
  get size(): number {
    return this.#items.length - this.#head;
  }

  /** Appends one event. */
  push(event: E): void {
    this.#items.push(event);
  }

  /** The oldest unread event, or undefined when there is none. */
  shift(): E | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const event = this.#items[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) this.compact();
    return event;
  }

  /** Lets go of the events already read. */
  compact(): void {
    if (this.#head === 0) return;
    this.#items = this.#items.slice(this.#head);
    this.#head = 0;
  }

  /** Forgets every event. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
