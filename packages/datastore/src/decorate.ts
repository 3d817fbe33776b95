/**
 * A datastore that forwards to another with some methods replaced: the one way a test double, a
 * read-only view or a counting wrapper is built over any backend, instead of each writing out the
 * eight forwarders (which must keep the inner store as their receiver: the memory store's methods
 * use private fields).
 */
import type { Datastore } from "./types.js";

/**
 * `inner` with the methods in `over` replaced; every other method calls `inner`'s with `inner` as its
 * receiver. `close` and `Symbol.asyncDispose` close through `over.close` when it is given, else `inner`.
 */
export function decorateDatastore(inner: Datastore, over: Partial<Datastore> = {}): Datastore {
  const close = over.close ?? (() => inner.close());
  return {
    get: (key, options) => inner.get(key, options),
    list: (kind, options) => inner.list(kind, options),
    create: (object, options) => inner.create(object, options),
    update: (object, options) => inner.update(object, options),
    delete: (key, options) => inner.delete(key, options),
    transaction: (ops, options) => inner.transaction(ops, options),
    watch: (kind, options) => inner.watch(kind, options),
    ...over,
    close,
    [Symbol.asyncDispose]: close,
  } as Datastore;
}
