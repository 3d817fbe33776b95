/**
 * Exec credential plugins: client-node runs the kubeconfig's `exec` command (a real process, here the
 * Node binary itself) and the transport sends the token it prints.
 */

import { afterAll, expect, it } from "vitest";
import { stringify } from "yaml";
import { startFakeKubeApiServer } from "../testing/index.js";
import { loadKubeConfig, transportFromKubeConfig } from "./kubeconfig.js";

const servers: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const s of servers) await s.close();
});

it("sends the token an exec credential plugin prints", async () => {
  const server = await startFakeKubeApiServer({ token: "from-exec-plugin" });
  servers.push(server);
  server.create("namespaces", { metadata: { name: "default" } });
  const credential = JSON.stringify({
    apiVersion: "client.authentication.k8s.io/v1beta1",
    kind: "ExecCredential",
    status: { token: "from-exec-plugin" },
  });
  const text = stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "fake", cluster: { server: server.url } }],
    users: [
      {
        name: "exec",
        user: {
          exec: {
            apiVersion: "client.authentication.k8s.io/v1beta1",
            command: process.execPath,
            args: ["-e", `process.stdout.write(${JSON.stringify(credential)})`],
            interactiveMode: "Never",
          },
        },
      },
    ],
    contexts: [{ name: "c", context: { cluster: "fake", user: "exec" } }],
    "current-context": "c",
  });
  const transport = transportFromKubeConfig(loadKubeConfig({ text }));
  try {
    const res = await transport.get("/api/v1/namespaces");
    expect(res.status).toBe(200);
    res.destroy();
  } finally {
    transport.close();
  }
});
