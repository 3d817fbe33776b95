// The README's example, run as written; the test also checks that the README shows exactly this code.
import { readFileSync } from "node:fs";
import { expect, it, vi } from "vitest";

const logged: unknown[][] = [];
const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void logged.push(args));

// README example: start
import { createMemoryDatastore } from "@margay/datastore";
import { createHttpTransport, createKubeAdapter } from "@margay/kube-adapter";
import { startFakeKubeApiServer } from "@margay/kube-adapter/testing";

const server = await startFakeKubeApiServer();
server.create("namespaces", { metadata: { name: "shop" } });
server.create("pods", {
  metadata: { name: "web-1", namespace: "shop", labels: { app: "web" } },
  spec: { nodeName: "node-1", containers: [{ name: "c", ports: [{ name: "http", containerPort: 80 }] }] },
  status: { phase: "Running", podIPs: [{ ip: "10.244.1.5" }] },
});
const datastore = createMemoryDatastore();
const adapter = createKubeAdapter({
  transport: createHttpTransport({ server: server.url }),
  datastore,
});
try {
  await adapter.waitForSync();
  console.log((await datastore.list("WorkloadEndpoint")).items[0]?.metadata.name); // node--1-k8s-web--1-eth0
} finally {
  await adapter.close();
  await server.close();
}
// README example: end
log.mockRestore();

it("runs the README example, and the README shows exactly this code", () => {
  expect(logged).toEqual([["node--1-k8s-web--1-eth0"]]);
  const source = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  expect(readFileSync(new URL("../README.md", import.meta.url), "utf8")).toContain(code.trim());
});
