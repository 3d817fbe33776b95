/**
 * The one serialized writer between converted Kubernetes state and a {@link Datastore}. It holds the
 * desired model objects (by source), remembers what it last wrote (key → resourceVersion and content
 * fingerprint), and drains a queue of dirty keys: create, update with compare-and-swap, or delete with
 * a resourceVersion precondition. Conflicts re-read and retry; objects it does not own are never
 * overwritten or deleted. A resync re-reads the datastore and re-queues every difference, so the
 * datastore converges to the desired state whatever happened to it in between.
 *
 * @packageDocumentation
 */

import { sleep } from "@margay/api";
import type { Datastore, ObjectKey, StoredObject, TxnOp } from "@margay/datastore";
import { isDatastoreError } from "@margay/datastore";
import { type Logger, silentLogger } from "../logger.js";
import { fingerprint } from "./fingerprint.js";
import { DEFAULT_OWNER, isOwnedBy, withOwnership } from "./ownership.js";

/** Options of {@link createModelSync}. */
export interface ModelSyncOptions {
  /** Where the model lives. Required. */
  datastore: Datastore;
  /** Model kinds this writer manages; a resync lists exactly these. Required. */
  kinds: readonly string[];
  /** Value of the owner annotation. Default `kube-adapter`. */
  owner?: string | undefined;
  /** Keys written per datastore transaction. Default 128; 1 writes key by key. */
  batchSize?: number | undefined;
  /** Delay before retrying a key after an unexpected datastore error, ms. Default 500. */
  retryDelayMs?: number | undefined;
  /** Structured logger. Default silent. */
  logger?: Logger | undefined;
}

/** Counters of a {@link ModelSync}. */
export interface ModelSyncStats {
  creates: number;
  updates: number;
  deletes: number;
  /** Compare-and-swap failures (each re-read and retried). */
  conflicts: number;
  /** Writes skipped because an object not owned by the adapter holds the key. */
  foreignSkips: number;
  /** Unexpected datastore errors (each retried later). */
  errors: number;
  /** Objects the datastore refused as invalid (not retried until they change). */
  rejected: number;
  /** Completed resyncs. */
  resyncs: number;
}

/** What a resync found. */
export interface ResyncReport {
  /** Desired objects absent from the datastore. */
  missing: number;
  /** Owned objects in the datastore that are no longer desired. */
  stale: number;
  /** Owned objects whose content differs from the desired one. */
  changed: number;
}

/** The serialized writer. */
export interface ModelSync {
  /** Replaces the desired objects of one source (`Pod/ns/name`); unlisted objects of it get deleted. */
  setDesired(source: string, sourceUid: string | undefined, objects: readonly StoredObject[]): void;
  /** Forgets a source: its objects get deleted. */
  removeSource(source: string): void;
  /** Starts writing (until then changes only accumulate); runs a resync first. */
  start(): void;
  /** Re-reads the managed kinds and queues every difference; resolves with what it found. */
  resync(): Promise<ResyncReport>;
  /** Resolves when no key is queued and no write is in flight. */
  idle(): Promise<void>;
  /** Number of desired objects. */
  readonly desiredCount: number;
  /** Keys waiting to be written. */
  readonly pending: number;
  /** Counters. */
  readonly stats: Readonly<ModelSyncStats>;
  /** The desired objects (with ownership annotations), for inspection. */
  desiredObjects(): IterableIterator<StoredObject>;
  /** Stops the writer after the write in flight. */
  close(): Promise<void>;
}

interface Desired {
  object: StoredObject;
  fp: string;
  source: string;
  key: ObjectKey;
}

interface Written {
  rv: string;
  fp: string;
  key: ObjectKey;
  /** Datastore-assigned identity, carried into updates so the backend need not look it up again. */
  uid: string | undefined;
  created: string | undefined;
}

function writtenRecord(o: StoredObject, fp: string, key: ObjectKey): Written {
  return {
    rv: o.metadata.resourceVersion!,
    fp,
    key,
    uid: o.metadata.uid,
    created: o.metadata.creationTimestamp,
  };
}

function keyOf(o: StoredObject): ObjectKey {
  const ns = o.metadata.namespace;
  return ns === undefined
    ? { kind: o.kind, name: o.metadata.name }
    : { kind: o.kind, name: o.metadata.name, namespace: ns };
}

function idOf(k: ObjectKey): string {
  return `${k.kind}/${k.namespace ?? ""}/${k.name}`;
}

/** True if both lists hold the same ids in the same order (an update that keeps its outputs). */
function sameIds(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

class ModelSyncImpl implements ModelSync {
  readonly stats: ModelSyncStats = {
    creates: 0,
    updates: 0,
    deletes: 0,
    conflicts: 0,
    foreignSkips: 0,
    errors: 0,
    rejected: 0,
    resyncs: 0,
  };
  private readonly ds: Datastore;
  private readonly owner: string;
  private readonly kinds: readonly string[];
  private readonly retryDelayMs: number;
  private readonly batchSize: number;
  private readonly logger: Logger;
  private readonly desired = new Map<string, Desired>();
  private readonly bySource = new Map<string, string[]>();
  private readonly written = new Map<string, Written>();
  private readonly foreign = new Map<string, ObjectKey>();
  private readonly dirty = new Set<string>();
  private readonly resyncWaiters: { resolve: (r: ResyncReport) => void; reject: (e: unknown) => void }[] = [];
  private idleWaiters: (() => void)[] = [];
  private started = false;
  private closed = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(options: ModelSyncOptions) {
    this.ds = options.datastore;
    this.kinds = [...new Set(options.kinds)];
    this.owner = options.owner ?? DEFAULT_OWNER;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.batchSize = Math.max(1, options.batchSize ?? 128);
    this.logger = options.logger ?? silentLogger;
  }

  get desiredCount(): number {
    return this.desired.size;
  }

  get pending(): number {
    return this.dirty.size;
  }

  *desiredObjects(): IterableIterator<StoredObject> {
    for (const d of this.desired.values()) yield d.object;
  }

  setDesired(source: string, sourceUid: string | undefined, objects: readonly StoredObject[]): void {
    const before = this.bySource.get(source);
    const after: string[] = [];
    for (const o of objects) {
      const object = withOwnership(o, this.owner, source, sourceUid);
      const key = keyOf(object);
      const id = idOf(key);
      after.push(id);
      const fp = fingerprint(object);
      const prev = this.desired.get(id);
      if (prev !== undefined && prev.fp === fp && prev.source === source) continue;
      this.desired.set(id, { object, fp, source, key });
      this.markDirty(id);
    }
    if (before !== undefined) {
      for (const id of before) {
        if (after.includes(id)) continue;
        if (this.desired.get(id)?.source === source) {
          this.desired.delete(id);
          this.markDirty(id);
        }
      }
    }
    if (after.length === 0) {
      if (before !== undefined) this.bySource.delete(source);
    } else if (!sameIds(before, after)) {
      this.bySource.set(source, after);
    }
  }

  removeSource(source: string): void {
    this.setDesired(source, undefined, []);
  }

  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    // The start-up resync runs before any queued key, so the writer knows what it owns before it writes.
    this.resync().catch((error) => this.logger.warn({ error }, "initial resync failed"));
    this.running = this.loop();
  }

  resync(): Promise<ResyncReport> {
    return new Promise<ResyncReport>((resolve, reject) => {
      if (this.closed) return reject(new Error("model sync closed"));
      this.resyncWaiters.push({ resolve, reject });
      this.wake?.();
    });
  }

  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    await this.running;
    for (const w of this.resyncWaiters.splice(0)) w.reject(new Error("model sync closed"));
    this.flushIdle(true);
  }

  private busy = false;

  private isIdle(): boolean {
    return !this.started || (this.dirty.size === 0 && !this.busy && this.resyncWaiters.length === 0);
  }

  private flushIdle(force = false): void {
    if (!force && !this.isIdle()) return;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  private markDirty(id: string): void {
    this.dirty.add(id);
    this.wake?.();
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      if (this.resyncWaiters.length > 0) {
        const waiters = this.resyncWaiters.splice(0);
        this.busy = true;
        try {
          const report = await this.doResync();
          for (const w of waiters) w.resolve(report);
        } catch (error) {
          this.stats.errors++;
          this.logger.warn({ error }, "resync failed");
          for (const w of waiters) w.reject(error);
        } finally {
          this.busy = false;
        }
        continue;
      }
      const next = this.dirty.values().next();
      if (next.done === true) {
        this.flushIdle();
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      if (this.dirty.size < this.batchSize) {
        // Let input already received (watch chunks) be applied first: more keys per transaction, and
        // repeated changes to one key collapse into one write (as client-go's work queue does).
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.closed) break;
      }
      const batch: string[] = [];
      for (const id of this.dirty) {
        batch.push(id);
        if (batch.length >= this.batchSize) break;
      }
      for (const id of batch) this.dirty.delete(id);
      this.busy = true;
      try {
        await this.reconcileBatch(batch);
      } catch (error) {
        this.stats.errors++;
        this.logger.warn({ keys: batch.length, error }, "datastore write failed; retrying");
        await sleep(this.retryDelayMs);
        for (const id of batch) this.dirty.add(id);
      } finally {
        this.busy = false;
      }
    }
  }

  /** The write one key needs now, or `undefined` when it is in step (or held by a foreign object). */
  private plan(id: string): TxnOp | undefined {
    const want = this.desired.get(id);
    const have = this.written.get(id);
    if (want !== undefined) {
      if (this.foreign.has(id)) {
        this.stats.foreignSkips++;
        this.logger.warn({ key: id }, "key held by an object the adapter does not own; not overwriting");
        return undefined;
      }
      if (have?.fp === want.fp) return undefined;
      if (have === undefined) return { op: "create", object: want.object };
      return { op: "update", object: this.withIdentity(want.object, have) };
    }
    if (have === undefined) return undefined;
    return { op: "delete", key: have.key, resourceVersion: have.rv };
  }

  private withIdentity(object: StoredObject, have: Written): StoredObject {
    const meta: StoredObject["metadata"] = { ...object.metadata, resourceVersion: have.rv };
    if (have.uid !== undefined) meta.uid = have.uid;
    if (have.created !== undefined) meta.creationTimestamp = have.created;
    return { ...object, metadata: meta };
  }

  /**
   * Writes a batch of keys as one transaction (one datastore round trip, one revision). If any
   * precondition fails, falls back to key-by-key writes, which re-read and retry what conflicted.
   */
  private async reconcileBatch(ids: readonly string[]): Promise<void> {
    const ops: TxnOp[] = [];
    const opIds: string[] = [];
    // What was planned, captured now: the desired state may change while the write is in flight (the
    // key is then queued again).
    const planned: (Desired | undefined)[] = [];
    for (const id of ids) {
      const op = this.plan(id);
      if (op === undefined) continue;
      ops.push(op);
      opIds.push(id);
      planned.push(this.desired.get(id));
    }
    if (ops.length === 0) return;
    if (ops.length > 1) {
      try {
        const { results } = await this.ds.transaction(ops);
        ops.forEach((op, i) => {
          const id = opIds[i]!;
          if (op.op === "delete") {
            this.written.delete(id);
            this.stats.deletes++;
            return;
          }
          const want = planned[i]!;
          this.written.set(id, writtenRecord(results[i]!, want.fp, want.key));
          if (op.op === "create") this.stats.creates++;
          else this.stats.updates++;
        });
        return;
      } catch (error) {
        if (!isDatastoreError(error, "conflict", "not-found", "already-exists", "invalid")) throw error;
      }
    }
    for (const id of opIds) {
      try {
        await this.reconcile(id);
      } catch (error) {
        if (!isDatastoreError(error, "invalid")) throw error;
        // The backend refuses the object (e.g. its validation): retrying cannot help.
        this.stats.rejected++;
        this.logger.error({ key: id, error }, "datastore rejected a converted object");
      }
    }
  }

  /** Brings one key in line with the desired state. */
  private async reconcile(id: string): Promise<void> {
    for (let attempt = 0; attempt < 8; attempt++) {
      const want = this.desired.get(id);
      const have = this.written.get(id);
      if (want !== undefined) {
        if (this.foreign.has(id)) {
          this.stats.foreignSkips++;
          this.logger.warn({ key: id }, "key held by an object the adapter does not own; not overwriting");
          return;
        }
        if (have?.fp === want.fp) return;
        try {
          if (have === undefined) {
            const stored = await this.ds.create(want.object);
            this.written.set(id, writtenRecord(stored, want.fp, want.key));
            this.stats.creates++;
          } else {
            const stored = await this.ds.update(this.withIdentity(want.object, have));
            this.written.set(id, writtenRecord(stored, want.fp, want.key));
            this.stats.updates++;
          }
          return;
        } catch (error) {
          if (!isDatastoreError(error, "conflict", "not-found", "already-exists")) throw error;
          this.stats.conflicts++;
          await this.refresh(id, want.key);
        }
      } else {
        if (have === undefined) return;
        try {
          await this.ds.delete(have.key, { resourceVersion: have.rv });
          this.written.delete(id);
          this.stats.deletes++;
          return;
        } catch (error) {
          if (isDatastoreError(error, "not-found")) {
            this.written.delete(id);
            return;
          }
          if (!isDatastoreError(error, "conflict")) throw error;
          this.stats.conflicts++;
          await this.refresh(id, have.key);
        }
      }
    }
    throw new Error(`key ${id} kept conflicting`);
  }

  /** Re-reads one key after a failed precondition. */
  private async refresh(id: string, key: ObjectKey): Promise<void> {
    try {
      const cur = await this.ds.get(key);
      if (isOwnedBy(cur, this.owner)) {
        this.written.set(id, writtenRecord(cur, fingerprint(cur), key));
        this.foreign.delete(id);
      } else {
        this.written.delete(id);
        this.foreign.set(id, key);
      }
    } catch (error) {
      if (!isDatastoreError(error, "not-found")) throw error;
      this.written.delete(id);
      this.foreign.delete(id);
    }
  }

  private async doResync(): Promise<ResyncReport> {
    const found = new Map<string, Written>();
    const foreign = new Map<string, ObjectKey>();
    for (const kind of this.kinds) {
      const { items } = await this.ds.list(kind);
      for (const o of items) {
        const key = keyOf(o);
        const id = idOf(key);
        if (isOwnedBy(o, this.owner)) found.set(id, writtenRecord(o, fingerprint(o), key));
        else foreign.set(id, key);
      }
    }
    const report: ResyncReport = { missing: 0, stale: 0, changed: 0 };
    this.written.clear();
    for (const [id, w] of found) this.written.set(id, w);
    this.foreign.clear();
    for (const [id, k] of foreign) this.foreign.set(id, k);
    for (const [id, d] of this.desired) {
      const w = found.get(id);
      if (w === undefined) {
        if (!foreign.has(id)) report.missing++;
        this.dirty.add(id);
      } else if (w.fp !== d.fp) {
        report.changed++;
        this.dirty.add(id);
      }
    }
    for (const id of found.keys()) {
      if (!this.desired.has(id)) {
        report.stale++;
        this.dirty.add(id);
      }
    }
    this.stats.resyncs++;
    if (report.missing + report.stale + report.changed > 0) {
      this.logger.info({ ...report }, "resync found differences");
    }
    return report;
  }
}

/** Creates the serialized writer (idle until {@link ModelSync.start}). */
export function createModelSync(options: ModelSyncOptions): ModelSync {
  return new ModelSyncImpl(options);
}
