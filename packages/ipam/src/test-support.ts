/**
 * Helpers shared by this package's tests (not exported from the package): seeding pools, IPAM config
 * and reservations the way an operator would write them.
 */
import type { Datastore } from "@margay/datastore";
import { IpamKind, type IpamConfigSpec, type IpPoolSpec } from "./types.js";

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
