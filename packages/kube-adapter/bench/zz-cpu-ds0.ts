import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
import { createMemoryDatastore } from "../zz-ds0/src/index.js";
import { createKubeAdapter, type KubeTransport, type KubeResponse } from "../src/index.js";
import { makePod } from "./pods.js";

const PODS = 20000, NS = 400, NODES = 500, EVENTS = Number(process.env.EV ?? 100000);
let rv = 1;
const pods: any[] = [];
for (let i = 0; i < PODS; i++) { const p: any = makePod(i, NS, NODES); p.metadata.uid = `uid-${i}`; p.metadata.resourceVersion = String(++rv); pods.push(p); }
const nss = Array.from({ length: NS }, (_, n) => ({ metadata: { name: `ns-${n}`, uid: `ns-uid-${n}`, resourceVersion: "1" } }));
const listRv = rv;
const lines: string[] = [];
for (let j = 0; j < EVENTS; j++) {
  const p: any = makePod(j % PODS, NS, NODES);
  p.metadata.labels.v = String(j + 1); p.metadata.uid = `uid-${j % PODS}`; p.metadata.resourceVersion = String(++rv);
  lines.push(`${JSON.stringify({ type: "MODIFIED", object: { kind: "Pod", apiVersion: "v1", ...p } })}\n`);
}
const all = Buffer.from(lines.join(""));
const chunks: Buffer[] = [];
for (let o = 0; o < all.length; o += 65536) chunks.push(Buffer.from(all.subarray(o, o + 65536)));
let release!: () => void;
const released = new Promise<void>((r) => (release = r));
const resp = (status: number, body: AsyncIterable<Buffer>): KubeResponse => ({ status, headers: {}, body, destroy() {} });
const once = (b: Buffer) => (async function* () { yield b; })();
let podWatches = 0;
const transport: KubeTransport = {
  server: "http://x",
  close() {},
  async get(path) {
    const isPods = path.startsWith("/api/v1/pods");
    if (!path.includes("watch=1")) {
      const items = isPods ? pods : nss;
      return resp(200, once(Buffer.from(JSON.stringify({ metadata: { resourceVersion: String(listRv) }, items }))));
    }
    if (!isPods || podWatches++ > 0) return resp(200, (async function* () { await new Promise(() => {}); })());
    return resp(200, (async function* () { await released; for (const c of chunks) { yield c; await new Promise<void>((r) => setImmediate(r)); } await new Promise(() => {}); })());
  },
};
const ds = createMemoryDatastore({ historyLimit: 1000 });
const a = createKubeAdapter({ transport, datastore: ds, resources: ["namespaces", "pods"], resyncIntervalMs: 0, pageSize: 1_000_000 });
await a.waitForSync();
const inf = a.informers.get("pods")!;
const target = String(rv);
global.gc?.();
const sess = process.env.PROF ? new Session() : undefined; if (sess) { sess.connect(); await sess.post("Profiler.enable"); await sess.post("Profiler.start"); }
const c0 = process.cpuUsage(); const t0 = performance.now();
release();
while (inf.resourceVersion !== target) await new Promise((r) => setTimeout(r, 1));
await a.idle();
const t1 = performance.now(); const c = process.cpuUsage(c0);
if (sess) { const { profile } = await sess.post("Profiler.stop"); writeFileSync(process.env.PROF!, JSON.stringify(profile)); }
const cpuMs = (c.user + c.system) / 1000;
console.log(`events ${EVENTS} wall ${Math.round(t1 - t0)}ms cpu ${Math.round(cpuMs)}ms -> ${Math.round(EVENTS / (cpuMs / 1000))} ev/cpu-s, ${Math.round(EVENTS / ((t1 - t0) / 1000))} ev/s wall; updates ${a.stats().sync.updates}`);
process.exit(0);
