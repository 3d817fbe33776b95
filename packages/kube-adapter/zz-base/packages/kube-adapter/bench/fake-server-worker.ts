/**
 * The fake API server on its own thread, as a real API server runs in its own process: its work
 * (storing updates, serialising lists and watch streams) is not charged to the adapter being measured.
 */

import { parentPort, workerData } from "node:worker_threads";
import { startFakeKubeApiServer } from "../src/testing/index.js";
import { makePod } from "./pods.js";

/** Commands the benchmark sends. */
export type WorkerCommand =
  | { id: number; op: "populate"; pods: number; namespaces: number; nodes: number }
  | { id: number; op: "update"; from: number; count: number; pods: number; namespaces: number; nodes: number }
  | { id: number; op: "fail"; count: number; status: number }
  | { id: number; op: "drop" }
  | { id: number; op: "state" }
  | { id: number; op: "close" };

const server = await startFakeKubeApiServer(workerData as Parameters<typeof startFakeKubeApiServer>[0]);
const port = parentPort!;
port.on("message", async (m: WorkerCommand) => {
  let result: unknown = null;
  switch (m.op) {
    case "populate":
      for (let n = 0; n < m.namespaces; n++) server.create("namespaces", { metadata: { name: `ns-${n}` } });
      for (let i = 0; i < m.pods; i++) server.create("pods", makePod(i, m.namespaces, m.nodes));
      break;
    case "update":
      for (let j = m.from; j < m.from + m.count; j++) {
        const p = makePod(j % m.pods, m.namespaces, m.nodes);
        p.metadata.labels!.v = String(j + 1);
        server.update("pods", p);
      }
      break;
    case "fail":
      server.failRequests(m.count, m.status);
      break;
    case "drop":
      result = server.dropWatches();
      break;
    case "state":
      result = { resourceVersion: server.resourceVersion, injectedFailures: server.stats.injectedFailures };
      break;
    case "close":
      await server.close();
      port.postMessage({ id: m.id, result });
      port.close();
      return;
  }
  port.postMessage({ id: m.id, result });
});
port.postMessage({ id: 0, result: server.url });
