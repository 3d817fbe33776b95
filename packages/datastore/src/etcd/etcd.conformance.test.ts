import { randomBytes } from "node:crypto";
import { afterAll, beforeAll } from "vitest";
import { createEtcdDatastore } from "../index.js";
import { describeDatastoreConformance } from "../conformance/index.js";
import { type EtcdServer, freePort, startEtcd } from "../testing/index.js";

// A real etcd (Debian etcd-server), private to this file; each test gets a fresh key prefix on it.
let etcd: EtcdServer;
beforeAll(async () => {
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

describeDatastoreConformance(
  "etcd",
  async () => {
    const ds = createEtcdDatastore({
      endpoints: etcd.endpoints,
      prefix: `/margay-conf-${randomBytes(4).toString("hex")}`,
    });
    return {
      ds,
      compact: async (rev) => {
        await ds.client.kv.compact({ revision: rev, physical: true });
      },
      cleanup: () => ds.close(),
    };
  },
  {
    // Nothing listens on a port just found free: every call fails fast (no read retries).
    unreachable: async () =>
      createEtcdDatastore({
        endpoints: [`http://127.0.0.1:${await freePort()}`],
        dialTimeoutMs: 500,
        requestTimeoutMs: 1_000,
        readAttempts: 1,
      }),
  },
);
