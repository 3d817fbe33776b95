/**
 * Child process of `etcd-security.interop.test.ts`: reads datastore options (JSON, PEM as base64) from
 * stdin, makes one `get` and one watch, prints what failed and how, closes the datastore and then simply
 * returns. The parent checks that the process exits on its own: nothing (socket, timer, reconnect loop)
 * may keep it alive after `close()`.
 */

import { inspect } from "node:util";
import { createEtcdDatastore, type EtcdDatastoreOptions, isDatastoreError } from "../index.js";

interface ChildInput {
  options: Omit<EtcdDatastoreOptions, "tls"> & { tls?: { ca?: string; cert?: string; key?: string } };
  watchBoundMs: number;
}

function describeError(e: unknown) {
  if (!isDatastoreError(e))
    return { code: "not-a-datastore-error", message: String(e), inspected: inspect(e) };
  return {
    code: e.code,
    retryable: e.retryable,
    reason: e.details.reason,
    message: e.message,
    inspected: inspect(e, { depth: 8 }),
  };
}

async function main() {
  let raw = "";
  for await (const chunk of process.stdin) raw += String(chunk);
  const input = JSON.parse(raw) as ChildInput;
  const b64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, "base64"));
  const { tls, ...rest } = input.options;
  const options: EtcdDatastoreOptions = { ...rest };
  if (tls?.ca !== undefined)
    options.tls = { ca: Buffer.from(tls.ca, "base64"), cert: b64(tls.cert), key: b64(tls.key) };
  const out: Record<string, unknown> = {};
  const ds = createEtcdDatastore(options);
  try {
    out.get = await ds.get({ kind: "SecProbe", name: "a" }).then(
      () => ({ code: "ok" }),
      (e: unknown) => describeError(e),
    );
    // Bounded so a hang reports itself as `aborted` instead of blocking the parent.
    const w = ds.watch("SecProbe", { signal: AbortSignal.timeout(input.watchBoundMs) });
    try {
      for await (const _ of w) {
        // A misconfigured datastore delivers no events.
      }
      out.watch = { code: "ended" };
    } catch (e) {
      out.watch = describeError(e);
    }
    out.inspected = inspect(ds, { depth: 8 });
  } finally {
    await ds.close();
  }
  process.stdout.write(JSON.stringify(out));
}

await main();
