import { createEtcdDatastore } from "@margay/datastore";
import { startEtcd } from "@margay/datastore/testing";
import { createIpam } from "/work/main/packages/ipam/src/ipam.ts";
import { putPool } from "/work/main/packages/ipam/src/test-support.ts";
const etcd = await startEtcd();
const ds = createEtcdDatastore({ endpoints: etcd.endpoints });
await putPool(ds, "v4", { cidr: "10.128.0.0/16", blockSize: 26 });
const conflicts: Record<string, number> = {};
const logger = { debug: (a: Record<string, unknown>) => { const k = `${a.op}:${a.kind}:${a.attempt}`; conflicts[k] = (conflicts[k] ?? 0) + 1; }, warn() {} };
async function run(id: number) {
  const ipam = createIpam({ datastore: ds, logger });
  const held: string[] = [];
  for (let i = 0; i < 400; i++) {
    if (held.length < 40 && Math.random() < 0.6 || held.length === 0) {
      const h = `w${id}.${i}`; await ipam.autoAssign({ handleId: h, node: "host-a", num4: 1 }); held.push(h);
    } else {
      const [h] = held.splice(Math.floor(Math.random() * held.length), 1); await ipam.releaseByHandle(h!);
    }
  }
}
const t = Date.now();
try { await Promise.all([run(0), run(1)]); } catch (e) { console.log("ERR", e); }
console.log(Date.now() - t, "ms", conflicts);
await ds.close(); await etcd.stop();
