// The README's example, run as written; the test also checks that the README shows exactly this code.
import { readFileSync } from "node:fs";
import { expect, it, vi } from "vitest";

const logged: unknown[][] = [];
const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void logged.push(args));

// README example: start
import { createMemoryDatastore } from "@margay/datastore";
import { createIpam } from "@margay/ipam";

const datastore = createMemoryDatastore(); // or createEtcdDatastore({ endpoints: [...] })
// Pools are ordinary resources (normally written with @margay/api / margayctl).
await datastore.create({ kind: "IPPool", metadata: { name: "v4" }, spec: { cidr: "10.244.0.0/16" } });
await datastore.create({ kind: "IPPool", metadata: { name: "v6" }, spec: { cidr: "fd00:10:244::/64" } });

const ipam = createIpam({ datastore });
const { ipv4, ipv6 } = await ipam.autoAssign({
  handleId: "k8s-pod-network.3f9a1c", // <network>.<containerID>
  node: "node-1",
  num4: 1,
  num6: 1, // dual-stack: both or nothing
  attrs: { pod: "web-0", namespace: "default", node: "node-1" },
});
console.log(ipv4[0].ip, ipv6[0].ip); // 10.244.x.y fd00:10:244:0:…

await ipam.releaseByHandle("k8s-pod-network.3f9a1c"); // idempotent
await ipam.close();
// README example: end
log.mockRestore();

it("runs the README example, and the README shows exactly this code", () => {
  const [v4, v6] = logged[0] as [string, string];
  expect(v4).toMatch(/^10\.244\.\d+\.\d+$/);
  expect(v6).toMatch(/^fd00:10:244:0:/);
  const source = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  expect(readFileSync(new URL("../README.md", import.meta.url), "utf8")).toContain(code.trim());
});
