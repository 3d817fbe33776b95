/** What the syncer's unit and interop tests share: objects, a wait, and the stream folded into state. */

import { sleep } from "@margay/api";
import type { Datastore, StoredObject, SyncerEvent } from "../index.js";

/** A minimal object of `kind`; `n` in the spec makes an update a real change. */
export const obj = (
  kind: string,
  name: string,
  n = 0,
  namespace?: string,
): StoredObject & { spec: { n: number } } => ({
  apiVersion: "margay.io/v1",
  kind,
  metadata: namespace === undefined ? { name } : { name, namespace },
  spec: { n },
});

/** Polls `cond` until it holds; fails naming `what` after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** An event's identity: `<kind>/<namespace>/<name>`. */
export const id = (e: { kind: string; key: { namespace?: string; name: string } }) =>
  `${e.kind}/${e.key.namespace ?? ""}/${e.key.name}`;

/** Applies the stream to a map of key → revision, as a consumer keyed by identity does. */
export function fold(events: readonly SyncerEvent[]): Map<string, string> {
  const state = new Map<string, string>();
  for (const e of events) {
    if (e.type === "upsert") state.set(id(e), e.revision);
    else if (e.type === "delete") state.delete(id(e));
  }
  return state;
}

/** The store's contents in the same shape as {@link fold}. */
export async function stored(ds: Datastore, kinds: readonly string[]): Promise<Map<string, string>> {
  const state = new Map<string, string>();
  for (const kind of kinds) {
    for (const o of (await ds.list(kind)).items) {
      state.set(`${kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`, o.metadata.resourceVersion!);
    }
  }
  return state;
}

/** The stream as `"<type> <kind>/<namespace>/<name>"` lines and `"in-sync"`. */
export const summary = (events: readonly SyncerEvent[]) =>
  events.map((e) => (e.type === "in-sync" ? "in-sync" : `${e.type} ${id(e)}`));
