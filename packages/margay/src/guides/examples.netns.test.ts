/**
 * The examples under examples/ that need root and network namespaces, imported as written (so they run
 * against the sources). Each creates its own namespaces and deletes them, also on failure.
 */
import { spawnSync } from "node:child_process";
import { afterEach, describe, expect, it, vi } from "vitest";

describe("examples/ in network namespaces", () => {
  afterEach(() => vi.restoreAllMocks());

  it("dataplane-netns.ts: the Linux driver programs routes and nftables for a plumbed pod", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
    await import("../../../../examples/dataplane-netns.js");
    expect(lines[0]).toMatch(/^pod veth mgy[0-9a-f]{12}$/);
    const veth = lines[0]!.split(" ")[2]!;
    expect(lines).toContain("route blackhole 10.244.0.0/26 proto 80");
    expect(lines).toContain(`route 10.244.0.5 dev ${veth} proto 80 scope link`);
    expect(lines).toContain("route 10.244.1.0/26 via 192.168.0.2 dev eth0 proto 80");
    expect(lines).toContain("nft table inet margay present");
    // Its namespaces are gone.
    const left = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
    expect(left).not.toContain(`mg-example-node-${process.pid}`);
    expect(left).not.toContain(`mg-example-pod-${process.pid}`);
  });
});
