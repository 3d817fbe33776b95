/**
 * etcd watches as {@link Watch} streams: one etcd watcher per call, resumed after the last revision
 * handed to the consumer on every reconnection, ended (not retried) by a failure reconnecting cannot
 * cure, and a server-side cancellation told apart as `compacted` (probing the revision on etcd 3.4).
 */

import type { Etcd3, Watcher } from "etcd3";
import { closedError, compactedError, isDatastoreError } from "../errors.js";
import type { StoredObject, Watch, WatchEvent, WatchOptions } from "../types.js";
import { checkNamespaceFilter, parseFromRevision } from "../validation.js";
import { WatchStream } from "../watch-stream.js";
import type { EtcdContext } from "./etcd-calls.js";
import { prefixEnd, toBuf, toWatchEvent } from "./etcd-codec.js";
import { isCompactedMessage, isFutureRevisionMessage, mapEtcdError } from "./etcd-errors.js";
import { BACKEND } from "./etcd-options.js";
import { rangePrefix } from "./keys.js";
import { redactUrlCredentials } from "./tls-diagnosis.js";

/** Opens a watch of `kind` (see {@link Datastore.watch}); the caller has checked the store is open. */
export function openWatch<T extends StoredObject>(
  ctx: EtcdContext,
  kind: string,
  options: WatchOptions,
): Watch<T> {
  checkNamespaceFilter(kind, options.namespace, ctx.validation);
  const from = options.fromRevision === undefined ? undefined : parseFromRevision(options.fromRevision);
  const p = rangePrefix(ctx.prefix, kind, options.namespace);
  const log = ctx.log;
  let watcher: Watcher | undefined;
  // Set once etcd itself cancelled the watcher: cancelling it again would wait for a reply that never
  // comes (etcd ignores a cancel of an unknown watch id).
  let cancelledByServer = false;
  const stream: WatchStream = new WatchStream({
    queueLimit: ctx.watchQueueLimit,
    signal: options.signal,
    backend: BACKEND,
    onStop: async () => {
      ctx.watches.delete(stream);
      if (watcher !== undefined && !cancelledByServer) await boundedWait(watcher.cancel(), 2_000);
      releaseIdleWatchStream(ctx.client);
    },
  });
  if (stream.stopped) return stream as unknown as Watch<T>;
  ctx.watches.add(stream);
  // The last revision handed to the consumer. Every (re)connection resumes right after it, whatever
  // the client library's own bookkeeping says: etcd3 resumes from the last *header* revision, which
  // during a catch-up batch is ahead of the events delivered so far (and could skip some).
  let last = from;
  const builder = ctx.client
    .watch()
    .inRange({ start: toBuf(p), end: prefixEnd(p) })
    .withPreviousKV();
  if (from !== undefined) builder.startRevision(String(from + 1));
  // `watcher()` attaches synchronously, so our listeners are in place before any response arrives.
  const w = builder.watcher();
  watcher = w;
  const pin = () => {
    if (last !== undefined) (w.request as { start_revision?: string }).start_revision = String(last + 1);
  };
  let disconnected = false;
  w.on("connected", (res) => {
    // A watch "from now" starts after the revision etcd reports when it registers the watch.
    if (last === undefined) last = Number(res.header.revision);
    pin();
    if (disconnected) {
      disconnected = false;
      log.info({ kind, revision: last }, "etcd watch reconnected");
    }
  });
  w.on("disconnected", (err: unknown) => {
    pin();
    disconnected = true;
    log.warn({ kind, revision: last, error: errorText(err) }, "etcd watch disconnected; reconnecting");
    // etcd3 reconnects forever; a failure that reconnecting cannot cure (wrong password, no permission,
    // TLS misconfiguration) ends the watch instead, and detaching the watcher stops the reconnect loop.
    void ctx.calls.classify(err, { kind }).then((e) => {
      if (!e.retryable && e.code !== "closed") {
        log.error({ kind, code: e.code }, "etcd watch failed; not reconnecting");
        stream.fail(e);
      }
    });
  });
  w.on("data", (res) => {
    try {
      if (res.events.length === 0) {
        // A progress notification (sent only to watchers that are in sync): nothing up to the header
        // revision is pending, so a later resume may start after it (avoids needless `compacted`).
        const h = Number(res.header.revision);
        if (last !== undefined && h > last) last = h;
        pin();
        return;
      }
      const out: WatchEvent[] = [];
      let max = last ?? 0;
      for (const ev of res.events) {
        const rev = Number(ev.kv.mod_revision);
        if (last !== undefined && rev <= last) continue; // replay after a reconnect: already delivered
        const e = toWatchEvent(ctx.prefix, ev.type, ev.kv, ev.prev_kv);
        if (e !== undefined) out.push(e);
        if (rev > max) max = rev;
      }
      last = max;
      pin();
      stream.push(out);
    } catch (e) {
      stream.fail(mapEtcdError(e, { kind }));
    }
  });
  w.on("error", (err) => {
    cancelledByServer = true;
    void watchFailed(ctx, err, last, kind).then((e) => {
      if (e.code !== "closed") log.warn({ kind, code: e.code, revision: last }, "etcd watch cancelled");
      stream.fail(e);
    });
  });
  return stream as unknown as Watch<T>;
}

/** Works out why etcd cancelled a watch: a compaction past our position, or something else. */
async function watchFailed(ctx: EtcdContext, err: unknown, last: number | undefined, kind: string) {
  if (ctx.isClosed()) return closedError({ backend: BACKEND });
  const next = (last ?? 0) + 1;
  let compacted = isCompactedMessage(err);
  if (!compacted) {
    try {
      // etcd 3.4 cancels a compacted watch without a reason; probe the revision it was resuming from.
      // The probed key is `<prefix>/`, inside the grant of a user restricted to `<prefix>/`.
      // A read like any other (retried when unavailable): etcd3 may be resetting its channel right
      // now, having just torn down the watch stream etcd cancelled.
      await ctx.calls.read(
        () =>
          ctx.client.kv.range({
            key: toBuf(`${ctx.prefix}/`),
            revision: next,
            keys_only: true,
            limit: 1,
          }),
        undefined,
        { kind },
      );
    } catch (probe) {
      const raw = isDatastoreError(probe) ? probe.cause : probe;
      compacted = isDatastoreError(probe, "compacted") || isCompactedMessage(raw);
      if (!compacted && !isFutureRevisionMessage(raw)) return ctx.calls.classify(probe, { kind });
    }
  }
  if (compacted) {
    return compactedError({ kind, revision: String(next - 1), backend: BACKEND }, err);
  }
  return ctx.calls.classify(err, { kind });
}

/**
 * Ends etcd3's shared watch stream once no watcher uses it. etcd3 leaves it open when etcd cancelled
 * the last watcher at creation (e.g. permission denied), and closing the client does not end open
 * streams: the socket would keep the process alive.
 */
export function releaseIdleWatchStream(client: Etcd3): void {
  const manager = (client as unknown as { watchManager?: WatchManagerInternals }).watchManager;
  if (manager === undefined || manager.watchers.length > 0 || manager.stream === undefined) return;
  try {
    manager.stream.cancel();
  } catch {
    // Already ended.
  }
}

/** The parts of etcd3's (internal) WatchManager touched to release its stream. */
interface WatchManagerInternals {
  watchers: unknown[];
  stream?: { cancel(): void } | undefined;
}

/** Waits for `p` (errors ignored) but no longer than `ms`: used where a peer may never answer. */
async function boundedWait(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    p.catch(() => undefined),
    new Promise<void>((r) => {
      timer = setTimeout(r, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** A failure as log text; never the object itself, which may hold request options. */
function errorText(e: unknown): string {
  return redactUrlCredentials(e instanceof Error ? e.message : String(e));
}
