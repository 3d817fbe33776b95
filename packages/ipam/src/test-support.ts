/**
 * Helpers shared by this package's tests (not exported from the package): seeding pools, IPAM config
 * and reservations the way an operator would write them.
 */
import { type Datastore, decorateDatastore, type TxnOp } from "@margay/datastore";
import { IpamKind, type IpamBlockObject, type IpamConfigSpec, type IpPoolSpec } from "./types.js";

/** Writes an `IPPool`. */
export async function putPool(ds: Datastore, name: string, spec: IpPoolSpec): Promise<void> {
  const object = { apiVersion: "projectcalico.org/v3", kind: IpamKind.Pool, metadata: { name }, spec };
  try {
    const cur = await ds.get({ kind: IpamKind.Pool, name });
    await ds.update({ ...object, metadata: { name, resourceVersion: cur.metadata.resourceVersion! } });
  } catch (e) {
    if ((e as { code?: string }).code !== "not-found") throw e;
    await ds.create(object);
  }
}

/** Writes the `default` IPAM configuration. */
export async function putIpamConfig(ds: Datastore, spec: IpamConfigSpec): Promise<void> {
  const object = { kind: IpamKind.Config, metadata: { name: "default" }, spec };
  try {
    await ds.get({ kind: IpamKind.Config, name: "default" });
    await ds.update(object);
  } catch (e) {
    if ((e as { code?: string }).code !== "not-found") throw e;
    await ds.create(object);
  }
}

/** Writes an `IPReservation`. */
export async function putReservation(ds: Datastore, name: string, reservedCIDRs: string[]): Promise<void> {
  await ds.create({ kind: IpamKind.Reservation, metadata: { name }, spec: { reservedCIDRs } });
}

/** Writes a `Node` with labels. */
export async function putNode(ds: Datastore, name: string, labels: Record<string, string>): Promise<void> {
  try {
    await ds.get({ kind: "Node", name });
    await ds.update({ kind: "Node", metadata: { name, labels } });
  } catch (e) {
    if ((e as { code?: string }).code !== "not-found") throw e;
    await ds.create({ kind: "Node", metadata: { name, labels } });
  }
}

/** A test clock shared by several IPAM clients. */
export interface TestClock {
  t: number;
}

/**
 * Wraps a datastore so that `hooks.afterList` runs once after the next listing of `kind` has been read
 * (the caller then works on a stale listing) and `hooks.afterGet` once after the next read of one
 * object of `kind` (the caller's compare-and-swap then meets a newer revision). A racing writer goes in
 * these hooks, at exactly the point of a `gc` where it must not win by accident.
 */
export function racingDatastore(
  ds: Datastore,
  kind: string,
  hooks: { afterList?: (() => Promise<void>) | undefined; afterGet?: (() => Promise<void>) | undefined },
): Datastore {
  return new Proxy(ds, {
    get(target, prop, receiver) {
      if (prop === "list") {
        return async (k: string, opts?: object) => {
          const res = await target.list(k, opts);
          const hook = hooks.afterList;
          if (k === kind && hook) {
            hooks.afterList = undefined;
            await hook();
          }
          return res;
        };
      }
      if (prop === "get") {
        return async (key: { kind: string; name: string }, opts?: object) => {
          const res = await target.get(key, opts);
          const hook = hooks.afterGet;
          if (key.kind === kind && hook) {
            hooks.afterGet = undefined;
            await hook();
          }
          return res;
        };
      }
      const v = Reflect.get(target, prop, receiver);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/**
 * `ds` as it is, except that every block create/update it is given in a transaction is recorded (in
 * order) in `blockWrites` before the transaction runs.
 */
export function recordBlockWrites(ds: Datastore): {
  datastore: Datastore;
  blockWrites: (TxnOp & { object: IpamBlockObject })[];
} {
  const blockWrites: (TxnOp & { object: IpamBlockObject })[] = [];
  const datastore = decorateDatastore(ds, {
    transaction: (ops, o) => {
      for (const op of ops)
        if ((op.op === "create" || op.op === "update") && op.object.kind === IpamKind.Block)
          blockWrites.push(op as TxnOp & { object: IpamBlockObject });
      return ds.transaction(ops, o);
    },
  });
  return { datastore, blockWrites };
}
