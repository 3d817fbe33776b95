import { randomBytes } from "node:crypto";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll } from "vitest";
import { createEtcdDatastore } from "../index.js";
import { describeDatastoreConformance } from "../conformance/index.js";
import { type EtcdServer, freePort, startEtcd } from "../testing/index.js";

// The conformance suite as production etcd runs: TLS with client certificates and authentication on.
// Each test gets its own user whose role grants exactly `<prefix>/` and nothing else, so any request
// the backend makes outside its prefix fails the test (`permission-denied`).
const ROOT_PW = `root-${randomBytes(6).toString("hex")}`;
let etcd: EtcdServer;
let root: Etcd3;
beforeAll(async () => {
  etcd = await startEtcd({ tls: "generate", rbac: { rootPassword: ROOT_PW } });
  const tls = etcd.clientTls!;
  root = new Etcd3({
    hosts: etcd.endpoints,
    credentials: { rootCertificate: tls.ca, certChain: tls.cert!, privateKey: tls.key! },
    auth: { username: "root", password: ROOT_PW },
  });
});
afterAll(async () => {
  root?.close();
  await etcd?.stop();
});

describeDatastoreConformance(
  "etcd (TLS + RBAC, prefix-restricted user)",
  async () => {
    const id = randomBytes(4).toString("hex");
    const prefix = `/margay-sconf-${id}`;
    const user = `u-${id}`;
    const password = randomBytes(12).toString("hex");
    await root.role(user).create();
    await root.role(user).grant({ permission: "Readwrite", range: root.range({ prefix: `${prefix}/` }) });
    await root.user(user).create(password);
    await root.user(user).addRole(user);
    const ds = createEtcdDatastore({
      endpoints: etcd.endpoints,
      tls: etcd.clientTls!,
      username: user,
      password,
      prefix,
    });
    return {
      ds,
      // Compaction is an administrator's operation (root), as in production.
      compact: async (rev) => {
        await root.kv.compact({ revision: rev, physical: true });
      },
      cleanup: () => ds.close(),
    };
  },
  {
    unreachable: async () =>
      createEtcdDatastore({
        endpoints: [`https://127.0.0.1:${await freePort()}`],
        tls: etcd.clientTls!,
        username: "nobody",
        password: "unused",
        dialTimeoutMs: 500,
        requestTimeoutMs: 1_000,
        readAttempts: 1,
      }),
  },
);
