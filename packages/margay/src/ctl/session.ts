/**
 * Opens the configured datastore for one command. A memory datastore is its snapshot file, opened under
 * the same lock file margay-ipam and the agent take, and flushed before the lock is released; etcd is
 * dialled with the TLS material the configuration names. Every API resource written goes through
 * `@margay/api`'s validator (the datastore's `validate` hook), as everywhere in the distribution.
 *
 * A snapshot owned by a running margay-node (`<snapshot>.owner`, see `node/snapshot-owner.ts`) is opened
 * read-only: reads see the agent's last snapshot, and every write fails before touching anything.
 *
 * @packageDocumentation
 */

import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { type Datastore, decorateDatastore } from "@margay/datastore";
import type { DatastoreConfig } from "../config/datastore-config.js";
import { acquireFileLock } from "../cni/ipam/file-lock.js";
import { readSnapshotOwner } from "../node/snapshot-owner.js";
import { CtlError, CtlErrorCode } from "./errors.js";

/** An open datastore and how to let go of it. */
export interface Session {
  readonly datastore: Datastore;
  /** `memory` or `etcd`. */
  readonly type: DatastoreConfig["type"];
  /** A human description: the snapshot path or the endpoints. */
  readonly target: string;
  /** Flushes (memory), closes, releases the lock. Idempotent. */
  close(): Promise<void>;
}

/** Opens the datastore of `config`. */
export async function openSession(config: DatastoreConfig): Promise<Session> {
  const { apiValidator } = await import("../config/api-validator.js");
  if (config.type === "memory") {
    try {
      mkdirSync(dirname(config.snapshotPath), { recursive: true });
    } catch (e) {
      throw new CtlError(
        CtlErrorCode.Io,
        `cannot create the directory of ${config.snapshotPath} (${(e as NodeJS.ErrnoException).code})`,
        { file: config.snapshotPath },
        e,
      );
    }
    const lock = await acquireFileLock(`${config.snapshotPath}.lock`, { timeoutMs: config.lockTimeoutMs });
    try {
      const { createMemoryDatastore } = await import("./memory-backend.js");
      // A running agent rewrites the snapshot after each of its writes and never rereads it: a write here
      // would be lost. Checked under the lock the agent takes its ownership under (see snapshot-owner.ts).
      const owner = readSnapshotOwner(config.snapshotPath);
      if (owner !== undefined) {
        await lock.release();
        const memory = createMemoryDatastore({ snapshotPath: config.snapshotPath, validate: apiValidator });
        const datastore = readOnlyDatastore(memory, ownedError(config.snapshotPath, owner.pid));
        let closed = false;
        return {
          datastore,
          type: "memory",
          target: config.snapshotPath,
          async close() {
            if (closed) return;
            closed = true;
            await memory.close();
          },
        };
      }
      const memory = createMemoryDatastore({
        snapshotPath: config.snapshotPath,
        durability: "async",
        validate: apiValidator,
      });
      let closed = false;
      return {
        datastore: memory,
        type: "memory",
        target: config.snapshotPath,
        async close() {
          if (closed) return;
          closed = true;
          try {
            await memory.flush();
            await memory.close();
          } finally {
            await lock.release();
          }
        },
      };
    } catch (e) {
      await lock.release();
      throw e;
    }
  }
  const { loadDatastoreConnection } = await import("../config/datastore-config.js");
  const connection = await loadDatastoreConnection(config, "$");
  const { createEtcdDatastore } = await import("./etcd-backend.js");
  const datastore = createEtcdDatastore({ ...connection, readAttempts: 1, validate: apiValidator });
  let closed = false;
  return {
    datastore,
    type: "etcd",
    target: config.endpoints.join(","),
    async close() {
      if (closed) return;
      closed = true;
      await datastore.close();
    },
  };
}

/** The one-line failure of a write to a snapshot a live agent owns (exit 1). */
function ownedError(snapshotPath: string, pid: number): CtlError {
  return new CtlError(
    CtlErrorCode.Datastore,
    `the embedded datastore ${snapshotPath} is owned by margay-node (pid ${pid}): stop the agent to change it, ` +
      "or use etcd for a cluster you change while it runs",
    { file: snapshotPath, ownerPid: pid },
  );
}

/** `datastore` for reading only: every write rejects with `error` and reaches nothing. */
function readOnlyDatastore(datastore: Datastore, error: CtlError): Datastore {
  const refuse = (): Promise<never> => Promise.reject(error);
  return decorateDatastore(datastore, {
    create: refuse,
    update: refuse,
    delete: refuse,
    transaction: refuse,
  });
}
