/** The node-scoped GC scenarios over a real etcd (several IPAM clients, one shared store). */
import { createEtcdDatastore, type Datastore } from "@margay/datastore";
import { type EtcdServer, startEtcd } from "@margay/datastore/testing";
import { afterAll, beforeAll, describe } from "vitest";
import { scopedGcSuite } from "./scoped-gc.suite.js";

let etcd: EtcdServer | undefined;
let n = 0;

beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

describe("scoped gc on etcd", () => {
  // Each scenario gets its own key prefix in the one etcd: a fresh, empty datastore.
  scopedGcSuite(
    async (): Promise<Datastore> =>
      createEtcdDatastore({ endpoints: etcd!.endpoints, prefix: `/scoped-gc-${++n}` }),
  );
});
