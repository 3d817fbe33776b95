// The README's example, run as written; the test also checks that the README shows exactly this code.
import { readFileSync } from "node:fs";
import { expect, it, vi } from "vitest";

const logged: unknown[][] = [];
const log = vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => void logged.push(args));

// README example: start
import { createSpeaker } from "@margay/bgp";

// A listens on 127.0.0.11; B connects to it from 127.0.0.12.
const a = await createSpeaker({
  asn: 65001,
  routerId: "10.255.0.1",
  listen: [{ host: "127.0.0.11", port: 0 }], // 0: any free port
});
a.addPeer({ address: "127.0.0.12", asn: 65002, passive: true });

const b = await createSpeaker({ asn: 65002, routerId: "10.255.0.2" });
b.addPeer({ address: "127.0.0.11", port: a.listening[0].port, asn: 65001, localAddress: "127.0.0.12" });

// What a dataplane installs: best-path changes, with ECMP next hops.
b.on((e) => {
  if (e.type === "best-path") console.log(e.withdrawn ? "del" : "add", e.prefix, e.nextHops);
  if (e.type === "peer-state") console.log(e.peer, e.previous, "→", e.state, `(${e.reason})`);
});

a.originate("10.1.0.0/16", { communities: ["65001:100"], largeCommunities: ["65001:1:2"] });
// … later
a.withdraw("10.1.0.0/16");
console.log(b.peers()[0]); // state, uptime, messages in/out by type, prefixes received/accepted/advertised, last error
await a.close(); // Cease/Administrative Shutdown to every peer
await b.close();
// README example: end
log.mockRestore();

it("runs the README example, and the README shows exactly this code", () => {
  // The example closes at once, so the session may not have come up; B's peer record was printed.
  const records = logged.map((l) => l[0]).filter((x) => typeof x === "object" && x !== null);
  expect(records).toContainEqual(expect.objectContaining({ state: expect.any(String) }));
  const source = readFileSync(new URL("./readme-example.test.ts", import.meta.url), "utf8");
  const code = source.split("// README example: start\n")[1]!.split("// README example: end")[0]!;
  expect(readFileSync(new URL("../README.md", import.meta.url), "utf8")).toContain(code.trim());
});
