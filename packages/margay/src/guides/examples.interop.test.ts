/**
 * The examples under examples/ that need a real peer: BIRD (Debian `bird2`) and etcd (`etcd-server`).
 * Each is imported as written, so it runs against the sources, and prints what its header promises.
 * (The pure ones run in scripts/examples.test.ts.)
 */
import { afterEach, describe, expect, it, vi } from "vitest";

async function run(path: string): Promise<string[]> {
  const lines: string[] = [];
  vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
    lines.push(args.map((a) => (typeof a === "string" ? a : JSON.stringify(a))).join(" "));
  });
  await import(/* @vite-ignore */ path);
  return lines;
}

describe("examples/ with real peers", () => {
  afterEach(() => vi.restoreAllMocks());

  it("bgp-bird.ts: a session with BIRD, each side learns the other's route", async () => {
    const out = await run("../../../../examples/bgp-bird.ts");
    expect(out).toEqual([
      "margay learned 198.51.100.0/24 via 127.0.0.22",
      "bird learned 10.244.7.0/26 from 127.0.0.21, AS path 64512",
      "session established",
    ]);
  });

  it("api-datastore.ts: the same tour on the memory and etcd backends", async () => {
    const out = await run("../../../../examples/api-datastore.ts");
    for (const backend of ["memory", "etcd"]) expect(out).toContain(`\n=== ${backend} backend`);
    expect(out.filter((l) => l.startsWith("second writer lost the race: conflict"))).toHaveLength(2);
    expect(out.filter((l) => l.startsWith("rejected: invalid"))).toHaveLength(2);
    expect(out.filter((l) => l.startsWith("transaction committed at revision"))).toHaveLength(2);
  });
});
