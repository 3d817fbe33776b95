/**
 * @margay/kube-adapter: a Kubernetes cluster's namespaces, pods and NetworkPolicies, converted to
 * Margay resources in a datastore and kept current by informers (list, then watch).
 *
 * Runs against the fake API server the package ships for tests (`@margay/kube-adapter/testing`): a
 * real HTTP server speaking the list/watch protocol, so no cluster is needed. Against a cluster, swap
 * the transport for `transportFromKubeConfig(loadKubeConfig({ ... }))` (see the package README).
 *
 * Run: `npx tsx examples/kube-adapter-fake-api.ts` (after `npm run build`); `scripts/examples.test.ts` runs it.
 */
import { createMemoryDatastore } from "@margay/datastore";
import { createHttpTransport, createKubeAdapter } from "@margay/kube-adapter";
import { startFakeKubeApiServer } from "@margay/kube-adapter/testing";

const server = await startFakeKubeApiServer();
const datastore = createMemoryDatastore();
const adapter = createKubeAdapter({ transport: createHttpTransport({ server: server.url }), datastore });
try {
  server.create("namespaces", { metadata: { name: "shop", labels: { tenant: "shop" } } });
  const pod = {
    metadata: { name: "web-1", namespace: "shop", labels: { app: "web" } },
    spec: { nodeName: "host-a", containers: [{ name: "c", ports: [{ name: "http", containerPort: 80 }] }] },
    status: { phase: "Running", podIPs: [{ ip: "10.244.1.5" }] },
  };
  server.create("pods", pod);
  server.create("networkpolicies", {
    metadata: { name: "web-from-frontend", namespace: "shop" },
    spec: {
      podSelector: { matchLabels: { app: "web" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { role: "frontend" } } }], ports: [{ port: 80 }] }],
    },
  });
  await adapter.waitForSync(); // every informer listed; the datastore holds the converted cluster

  for (const kind of ["Profile", "WorkloadEndpoint", "NetworkPolicy"]) {
    for (const o of (await datastore.list(kind)).items) {
      const ns = o.metadata.namespace ? `${o.metadata.namespace}/` : "";
      console.log(`${kind} ${ns}${o.metadata.name}`);
    }
  }

  // A relabel in the cluster reaches the datastore through the watch.
  const { revision } = await datastore.list("WorkloadEndpoint");
  const watch = datastore.watch("WorkloadEndpoint", { fromRevision: revision });
  server.update("pods", { ...pod, metadata: { ...pod.metadata, labels: { app: "web", stage: "canary" } } });
  for await (const ev of watch) {
    console.log(`${ev.type} ${ev.object.metadata.name} labels ${JSON.stringify(ev.object.metadata.labels)}`);
    break; // breaking out closes the watch
  }
} finally {
  await adapter.close();
  await server.close();
  await datastore.close();
}
