// The README's example, run as written; the test also checks that the README shows exactly this code.
import { readFileSync } from "node:fs";
import { expect, it, vi } from "vitest";

const logged: unknown[][] = [];
const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void logged.push(args));

// README example: start
import { createMemoryDatastore, createSyncer } from "@margay/datastore";

const datastore = createMemoryDatastore();
await datastore.create({ kind: "IPPool", metadata: { name: "default" }, spec: { cidr: "10.65.0.0/16" } });
const ac = new AbortController();
const syncer = createSyncer({ datastore, kinds: ["IPPool", "Node"], signal: ac.signal });
for await (const batch of syncer) {
  for (const u of batch) {
    if (u.type === "upsert") console.log("upsert", u.kind, u.key.name, u.revision);
    else if (u.type === "delete") console.log("delete", u.kind, u.key.name, u.revision);
    else ac.abort(); // "in-sync": every kind's initial list has been delivered
  }
}
// README example: end
log.mockRestore();

it("runs the README example, and the README shows exactly this code", () => {
  expect(logged).toEqual([["upsert", "IPPool", "default", expect.anything()]]);
  const source = readFileSync(new URL("./readme-syncer-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  expect(readFileSync(new URL("../README.md", import.meta.url), "utf8")).toContain(code.trim());
});
