import { describe, expect, it } from "vitest";
import { birdConfig, parseBirdPaths, parseBirdShowRoute } from "./bird-peer.js";

// As BIRD 2.0.12 prints `show route table master4` with two paths for one prefix (captured in the lab).
const SHOW_ROUTE = `BIRD 2.0.12 ready.
Table master4:
10.244.161.128/26    unicast [host2 08:32:04.123] * (100) [AS64512i]
\tvia 10.77.0.12 on eth0
                     unicast [host1 08:32:04.456] (100) [AS64512i]
\tvia 10.77.0.11 on eth0
10.99.0.0/24         blackhole [announced 08:32:00.000] * (200)
`;

describe("BIRD peer text", () => {
  it("parses every path, with the protocol that brought it and its next hop", () => {
    expect(parseBirdPaths(SHOW_ROUTE)).toEqual([
      expect.objectContaining({ prefix: "10.244.161.128/26", protocol: "host2", nextHop: "10.77.0.12" }),
      expect.objectContaining({ prefix: "10.244.161.128/26", protocol: "host1", nextHop: "10.77.0.11" }),
      expect.objectContaining({ prefix: "10.99.0.0/24", protocol: "announced", nextHop: undefined }),
    ]);
  });

  it("keeps the best (first) path per prefix", () => {
    const best = parseBirdShowRoute(SHOW_ROUTE);
    expect([...best.keys()]).toEqual(["10.244.161.128/26", "10.99.0.0/24"]);
    expect(best.get("10.244.161.128/26")?.protocol).toBe("host2");
  });

  it("writes one eBGP protocol per neighbour and exports only the announced prefixes", () => {
    const conf = birdConfig({
      address: "10.77.0.240",
      asNumber: 64513,
      neighbors: [
        { name: "host1", address: "10.77.0.11", asNumber: 64512 },
        { name: "host3", address: "10.78.0.13", asNumber: 64512, multihop: true },
      ],
      announce: ["10.99.0.0/24"],
    });
    expect(conf).toContain("route 10.99.0.0/24 blackhole;");
    expect(conf).toContain("protocol bgp host1 from lab_host { neighbor 10.77.0.11 as 64512; }");
    expect(conf).toContain("protocol bgp host3 from lab_host { neighbor 10.78.0.13 as 64512; multihop 4; }");
    expect(conf).toContain('export where proto = "announced"');
    expect(() =>
      birdConfig({
        address: "10.77.0.240",
        asNumber: 1,
        neighbors: [{ name: "bad name", address: "1.2.3.4", asNumber: 1 }],
        announce: [],
      }),
    ).toThrow(expect.objectContaining({ code: "bad-input" }));
  });
});
