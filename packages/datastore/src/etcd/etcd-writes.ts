/**
 * Writes as etcd transactions: create (absent-key compare), update (CAS on `mod_revision`, reading
 * first only when the caller's object lacks the server-owned fields), delete, and multi-key
 * transactions whose failed precondition is named exactly (every key read back in the same txn).
 */

import { randomUUID } from "node:crypto";
import type { ICompare, IKeyValue, IRequestOp, ITxnResponse } from "etcd3";
import { alreadyExistsError, conflictError, type DatastoreErrorDetails, notFoundError } from "../errors.js";
import { inheritServerFields, revisionMismatch } from "../backend-common.js";
import type { DeleteOptions, ObjectKey, StoredObject, TxnOp, TxnResult } from "../types.js";
import { type CheckedOp, checkKey, checkObject, checkTxnOps, parseRevision } from "../validation.js";
import type { EtcdContext } from "./etcd-calls.js";
import { decodeObject, encodeObject, toBuf } from "./etcd-codec.js";
import { BACKEND } from "./etcd-options.js";
import { objectKey } from "./keys.js";

/** An unconditional update that keeps losing races reports it instead of spinning forever. */
const MAX_UNCONDITIONAL_ATTEMPTS = 50;

type Signal = AbortSignal | undefined;

/** {@link Datastore.create}: one txn, put only if the key has never been created (or was deleted). */
export async function createObject<T extends StoredObject>(ctx: EtcdContext, object: T, signal: Signal) {
  const { key, copy } = checkObject(object, ctx.validation);
  const k = objectKey(ctx.prefix, key);
  copy.metadata.uid = randomUUID();
  copy.metadata.creationTimestamp = ctx.now().toISOString();
  const res = await ctx.calls.write(
    () =>
      ctx.client.kv.txn({
        compare: [{ key: toBuf(k), target: "Create", result: "Equal", create_revision: 0 }],
        success: [{ request_put: { key: toBuf(k), value: encodeObject(copy) } }],
      }),
    signal,
    key,
  );
  if (!res.succeeded) throw alreadyExistsError({ ...key, backend: BACKEND });
  copy.metadata.resourceVersion = res.header.revision;
  return copy as T;
}

/** {@link Datastore.update}: one CAS when the caller read the object, else read then CAS. */
export async function updateObject<T extends StoredObject>(ctx: EtcdContext, object: T, signal: Signal) {
  const { key, copy } = checkObject(object, ctx.validation);
  const k = objectKey(ctx.prefix, key);
  const meta = copy.metadata;
  const expected = meta.resourceVersion === undefined ? undefined : parseRevision(meta.resourceVersion);
  // Fast path, one round trip: a CAS whose caller read the object (and so carries its uid).
  if (expected !== undefined && meta.uid !== undefined && meta.creationTimestamp !== undefined) {
    return (await casPut(ctx, k, key, copy, expected, signal, true)) as T;
  }
  for (let attempt = 1; ; attempt++) {
    const cur = (await ctx.calls.read(() => ctx.client.kv.range({ key: toBuf(k) }), signal, { ...key }))
      .kvs[0];
    if (cur === undefined) throw notFoundError({ ...key, backend: BACKEND });
    const curRev = Number(cur.mod_revision);
    if (expected !== undefined && curRev !== expected) {
      throw revisionMismatch(key, expected, cur.mod_revision, BACKEND);
    }
    const stored = decodeObject(cur).metadata;
    if (meta.uid !== undefined && stored.uid !== undefined && meta.uid !== stored.uid) {
      throw conflictError({
        ...key,
        reason: "uid-mismatch",
        actualRevision: cur.mod_revision,
        backend: BACKEND,
      });
    }
    const next = structuredClone(copy);
    inheritServerFields(next.metadata, stored);
    const strict = expected !== undefined || attempt >= MAX_UNCONDITIONAL_ATTEMPTS;
    const out = await casPut(ctx, k, key, next, curRev, signal, strict);
    if (out !== undefined) return out as T;
    // Unconditional update raced another writer: re-read and apply again (last writer wins).
  }
}

/** CAS put on `mod_revision == rev`. On failure throws (strict) or returns undefined (to retry). */
async function casPut(
  ctx: EtcdContext,
  k: string,
  key: ObjectKey,
  obj: StoredObject,
  rev: number,
  signal: Signal,
  strict: boolean,
): Promise<StoredObject | undefined> {
  const res = await ctx.calls.write(
    () =>
      ctx.client.kv.txn({
        compare: [{ key: toBuf(k), target: "Mod", result: "Equal", mod_revision: rev }],
        success: [{ request_put: { key: toBuf(k), value: encodeObject(obj) } }],
        failure: [{ request_range: { key: toBuf(k) } }],
      }),
    signal,
    key,
  );
  if (res.succeeded) {
    obj.metadata.resourceVersion = res.header.revision;
    return obj;
  }
  const cur = res.responses[0]?.response_range?.kvs[0];
  if (cur === undefined) throw notFoundError({ ...key, backend: BACKEND });
  if (!strict) return undefined;
  throw revisionMismatch(key, rev, cur.mod_revision, BACKEND);
}

/** {@link Datastore.delete}: one txn, conditional on the revision when one is given. */
export async function deleteObject<T extends StoredObject>(
  ctx: EtcdContext,
  key: ObjectKey,
  options: DeleteOptions,
) {
  const k = checkKey(key, ctx.validation);
  const sk = toBuf(objectKey(ctx.prefix, k));
  const expected = options.resourceVersion === undefined ? undefined : parseRevision(options.resourceVersion);
  const res = await ctx.calls.write(
    () =>
      ctx.client.kv.txn({
        compare:
          expected === undefined
            ? [{ key: sk, target: "Version", result: "Greater", version: 0 }]
            : [{ key: sk, target: "Mod", result: "Equal", mod_revision: expected }],
        success: [{ request_delete_range: { key: sk, prev_kv: true } }],
        failure: [{ request_range: { key: sk } }],
      }),
    options.signal,
    k,
  );
  if (!res.succeeded) {
    const cur = res.responses[0]?.response_range?.kvs[0];
    if (cur === undefined) throw notFoundError({ ...k, backend: BACKEND });
    throw revisionMismatch(k, String(expected), cur.mod_revision, BACKEND);
  }
  const prev = res.responses[0]?.response_delete_range?.prev_kvs[0];
  if (prev === undefined) throw notFoundError({ ...k, backend: BACKEND });
  return decodeObject(prev) as T;
}

/** {@link Datastore.transaction}: every op's precondition a compare of one etcd txn. */
export async function runTransaction(
  ctx: EtcdContext,
  ops: readonly TxnOp[],
  signal: Signal,
): Promise<TxnResult> {
  const checked = checkTxnOps(ops, ctx.validation);
  await fillServerFields(ctx, checked, signal);
  const compare: ICompare[] = [];
  const success: IRequestOp[] = [];
  const now = ctx.now().toISOString();
  for (const op of checked) {
    const key = toBuf(objectKey(ctx.prefix, op.key));
    switch (op.op) {
      case "create":
        op.object.metadata.uid = randomUUID();
        op.object.metadata.creationTimestamp = now;
        compare.push({ key, target: "Create", result: "Equal", create_revision: 0 });
        success.push({ request_put: { key, value: encodeObject(op.object) } });
        break;
      case "update":
        compare.push({ key, target: "Mod", result: "Equal", mod_revision: op.revision });
        success.push({ request_put: { key, value: encodeObject(op.object) } });
        break;
      case "delete":
        compare.push(
          op.revision === undefined
            ? { key, target: "Version", result: "Greater", version: 0 }
            : { key, target: "Mod", result: "Equal", mod_revision: op.revision },
        );
        success.push({ request_delete_range: { key } });
        break;
      case "check":
        compare.push(
          op.absent
            ? { key, target: "Version", result: "Equal", version: 0 }
            : op.revision === undefined
              ? { key, target: "Version", result: "Greater", version: 0 }
              : { key, target: "Mod", result: "Equal", mod_revision: op.revision },
        );
        break;
    }
  }
  // On failure, read every key back in the same txn so the failed precondition can be named exactly.
  const failure: IRequestOp[] = checked.map((op) => ({
    request_range: { key: toBuf(objectKey(ctx.prefix, op.key)), keys_only: true },
  }));
  const res = await ctx.calls.write(() => ctx.client.kv.txn({ compare, success, failure }), signal, {});
  if (!res.succeeded) throw txnConflict(checked, res);
  const results = checked.map((op) => {
    if (op.op !== "create" && op.op !== "update") return null;
    op.object.metadata.resourceVersion = res.header.revision;
    return op.object;
  });
  return { revision: res.header.revision, results };
}

/** Transaction updates without uid/creationTimestamp get them from the stored object (one read txn). */
async function fillServerFields(ctx: EtcdContext, ops: CheckedOp[], signal: Signal): Promise<void> {
  const need = ops
    .map((op, i) => ({ op, i }))
    .filter(
      (x): x is { op: Extract<CheckedOp, { op: "update" }>; i: number } =>
        x.op.op === "update" &&
        (x.op.object.metadata.uid === undefined || x.op.object.metadata.creationTimestamp === undefined),
    );
  if (need.length === 0) return;
  const res = await ctx.calls.read(
    () =>
      ctx.client.kv.txn({
        success: need.map(({ op }) => ({ request_range: { key: toBuf(objectKey(ctx.prefix, op.key)) } })),
      }),
    signal,
    {},
  );
  need.forEach(({ op, i }, j) => {
    const kv = res.responses[j]?.response_range?.kvs[0];
    if (kv === undefined || Number(kv.mod_revision) !== op.revision) {
      throw conflictError({
        ...op.key,
        opIndex: i,
        reason: kv === undefined ? "missing" : "revision-mismatch",
        expectedRevision: String(op.revision),
        ...(kv === undefined ? {} : { actualRevision: kv.mod_revision }),
        backend: BACKEND,
      });
    }
    inheritServerFields(op.object.metadata, decodeObject(kv).metadata);
  });
}

/** The `conflict` naming the first op whose precondition the read-back shows failed. */
function txnConflict(ops: CheckedOp[], res: ITxnResponse) {
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const kv: IKeyValue | undefined = res.responses[i]?.response_range?.kvs[0];
    const actual = kv === undefined ? undefined : Number(kv.mod_revision);
    let reason: string | undefined;
    if (op.op === "create" || (op.op === "check" && op.absent)) {
      if (actual !== undefined) reason = "exists";
    } else if (actual === undefined) reason = "missing";
    else if (op.revision !== undefined && actual !== op.revision) {
      reason = "revision-mismatch";
    }
    if (reason !== undefined) {
      const d: DatastoreErrorDetails = { ...op.key, opIndex: i, reason, backend: BACKEND };
      if (op.op !== "create" && op.revision !== undefined) d.expectedRevision = String(op.revision);
      if (kv !== undefined) d.actualRevision = kv.mod_revision;
      return conflictError(d);
    }
  }
  return conflictError({ reason: "unknown", backend: BACKEND });
}
