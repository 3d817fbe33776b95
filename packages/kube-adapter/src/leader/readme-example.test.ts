// The README's leader-election example, run as written; the test also checks the README shows this code.
import { readFileSync } from "node:fs";
import { expect, it, vi } from "vitest";

const logged: unknown[][] = [];
const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void logged.push(args));

// README example: start
import type { KubeLease } from "@margay/kube-adapter";
import { createHttpTransport, createKubeClient, createLeaderElector } from "@margay/kube-adapter";
import { startFakeKubeApiServer } from "@margay/kube-adapter/testing";

const server = await startFakeKubeApiServer();
const client = createKubeClient(createHttpTransport({ server: server.url }));
let leading!: () => void;
const started = new Promise<void>((resolve) => {
  leading = resolve;
});
const elector = createLeaderElector({
  client,
  namespace: "kube-system",
  name: "margay-kube-controllers",
  identity: "controllers-0",
  // Start the controllers here; the signal passed in aborts when leadership ends.
  onStartedLeading: () => leading(),
  onStoppedLeading: () => console.log("stopped leading"),
});
elector.start();
await started;
const lease = await client.get<KubeLease>("leases", "kube-system", "margay-kube-controllers");
console.log(lease?.spec?.holderIdentity); // controllers-0
await elector.stop({ release: true }); // a standby takes over at its next retry
client.transport.close();
await server.close();
// README example: end
log.mockRestore();

it("runs the README's leader-election example, and the README shows exactly this code", () => {
  expect(logged).toEqual([["controllers-0"], ["stopped leading"]]);
  const source = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  expect(readFileSync(new URL("../../README.md", import.meta.url), "utf8")).toContain(code.trim());
});
