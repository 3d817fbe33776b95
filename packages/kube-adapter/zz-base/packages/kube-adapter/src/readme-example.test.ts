// The README's runnable example, kept honest by running it.
import { createMemoryDatastore } from "@margay/datastore";
import { createHttpTransport, createKubeAdapter } from "@margay/kube-adapter";
import { startFakeKubeApiServer } from "@margay/kube-adapter/testing";
import { expect, it } from "vitest";

it("README example: a pod on the fake API server becomes a WorkloadEndpoint", async () => {
  await using server = await startFakeKubeApiServer();
  server.create("namespaces", { metadata: { name: "shop" } });
  server.create("pods", {
    metadata: { name: "web-1", namespace: "shop", labels: { app: "web" } },
    spec: { nodeName: "node-1", containers: [{ name: "c", ports: [{ name: "http", containerPort: 80 }] }] },
    status: { phase: "Running", podIPs: [{ ip: "10.244.1.5" }] },
  });
  const datastore = createMemoryDatastore();
  await using adapter = createKubeAdapter({
    transport: createHttpTransport({ server: server.url }),
    datastore,
  });
  await adapter.waitForSync();
  expect((await datastore.list("WorkloadEndpoint")).items[0]?.metadata.name).toBe("node--1-k8s-web--1-eth0");
});
