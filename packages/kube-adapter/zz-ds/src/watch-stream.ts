/**
 * The consumer side of a watch, shared by the backends: a bounded queue exposed as an async iterable.
 *
 * The queue is bounded because a watcher that stops reading must not grow memory without limit: when it
 * overflows, the watch fails with `compacted` (reason `slow-consumer`), which tells the caller the same
 * thing a real compaction does: relist, then watch from the list's revision.
 */

import { compactedError } from "./errors.js";
import type { StoredObject, Watch, WatchEvent } from "./types.js";

/** Options of a {@link WatchStream}. */
export interface WatchStreamOptions {
  /** Events buffered before the watch fails with `compacted`. */
  queueLimit: number;
  /** Called once when the watch stops for any reason (close, abort, failure, end of iteration). */
  onStop: () => void | Promise<void>;
  signal?: AbortSignal | undefined;
  backend: string;
}

/** A bounded event queue with the {@link Watch} interface. */
export class WatchStream<T extends StoredObject = StoredObject> implements Watch<T> {
  #queue: WatchEvent<T>[] = [];
  #head = 0;
  #error: unknown = undefined;
  #ended = false;
  #stopped = false;
  #stopPromise: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  readonly #opts: WatchStreamOptions;
  readonly #onAbort = () => void this.close();

  constructor(opts: WatchStreamOptions) {
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

  /** Number of events waiting to be read. */
  get pending(): number {
    return this.#queue.length - this.#head;
  }

  /** Queues events; fails the watch with `compacted` if the queue would exceed its limit. */
  push(events: readonly WatchEvent<T>[]): void {
    if (this.stopped || events.length === 0) return;
    if (this.pending + events.length > this.#opts.queueLimit) {
      this.fail(compactedError({ reason: "slow-consumer", backend: this.#opts.backend }));
      return;
    }
    for (const e of events) this.#queue.push(e);
    this.#notify();
  }

  /** Fails the watch: queued events are still delivered, then iteration throws `error`. */
  fail(error: unknown): void {
    if (this.stopped) return;
    this.#error = error;
    this.#notify();
    void this.#stop();
  }

  /** Closes the watch: iteration ends (queued events are dropped). */
  close(): Promise<void> {
    if (!this.#ended) {
      this.#ended = true;
      this.#queue = [];
      this.#head = 0;
      this.#notify();
    }
    return this.#stop();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<WatchEvent<T>> {
    try {
      for (;;) {
        if (this.#head < this.#queue.length) {
          const ev = this.#queue[this.#head++]!;
          if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
            this.#queue = this.#queue.slice(this.#head);
            this.#head = 0;
          }
          yield ev;
          continue;
        }
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

  #notify(): void {
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
