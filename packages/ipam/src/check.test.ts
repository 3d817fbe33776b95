import { describe, expect, it } from "vitest";
import { allocateFromBlock, newBlock } from "./block.js";
import { buildCheckReport } from "./check.js";
import { formatCidr, parseCidr } from "./cidr.js";
import { normalizePool } from "./pools.js";
import {
  type BlockAffinityObject,
  IpamKind,
  type IpamBlockObject,
  type IpamBlockSpec,
  type IpamHandleObject,
} from "./types.js";

const block = (cidrText: string, spec: IpamBlockSpec): IpamBlockObject => ({
  apiVersion: IpamKind.apiVersion,
  kind: IpamKind.Block,
  metadata: { name: cidrText.replace(/[.:/]/g, "-") },
  spec,
});
const handle = (id: string, counts: Record<string, number>): IpamHandleObject => ({
  apiVersion: IpamKind.apiVersion,
  kind: IpamKind.Handle,
  metadata: { name: id },
  spec: { handleId: id, block: counts, deleted: false },
});
const affinity = (node: string, cidr: string): BlockAffinityObject => ({
  apiVersion: IpamKind.apiVersion,
  kind: IpamKind.Affinity,
  metadata: { name: `${node}-${cidr}` },
  spec: { node, cidr, state: "confirmed", deleted: false },
});
const alloc = (spec: IpamBlockSpec, cidrText: string, handleId: string, num: number) =>
  allocateFromBlock(spec, parseCidr(cidrText), { num, handleId, secondary: null, now: 5 }).spec;

const pools = [normalizePool("p", { cidr: "10.0.0.0/24", blockSize: 29 })];

describe("buildCheckReport", () => {
  it("is ok for a consistent store", () => {
    const c = parseCidr("10.0.0.0/29");
    const b = alloc(newBlock(c, "host:n", 0, formatCidr(c)), "10.0.0.0/29", "h", 2);
    const r = buildCheckReport({
      blocks: [block("10.0.0.0/29", b)],
      handles: [handle("h", { "10.0.0.0/29": 2 })],
      affinities: [affinity("n", "10.0.0.0/29")],
      pools,
      liveHandles: new Set(["h"]),
    });
    expect(r).toMatchObject({ ok: true, blocks: 1, allocated: 2, leaks: [] });
  });

  it("finds every kind of problem", () => {
    const c1 = parseCidr("10.0.0.0/29");
    const c2 = parseCidr("10.0.0.0/30"); // overlaps c1: a double allocation
    const c3 = parseCidr("10.9.0.0/29"); // outside every pool
    let b1 = alloc(newBlock(c1, "host:n", 0, formatCidr(c1)), "10.0.0.0/29", "a", 1);
    b1 = alloc(b1, "10.0.0.0/29", "lost", 1);
    const b2 = alloc(newBlock(c2, null, 0, formatCidr(c2)), "10.0.0.0/30", "b", 1);
    const b3 = newBlock(c3, "host:m", 0, formatCidr(c3));
    const broken = { ...newBlock(parseCidr("10.0.0.8/29"), null, 0, "10.0.0.8/29"), unallocated: [0, 0] };
    const r = buildCheckReport({
      blocks: [
        block("10.0.0.0/29", b1),
        block("10.0.0.0/30", b2),
        block("10.9.0.0/29", b3),
        block("10.0.0.8/29", broken),
      ],
      handles: [handle("a", { "10.0.0.0/29": 2 }), handle("b", { "10.0.0.0/30": 1 }), handle("empty", {})],
      affinities: [affinity("n", "10.0.0.0/29"), affinity("x", "10.0.0.16/29")],
      pools,
      liveHandles: new Set(["a", "b"]),
    });
    expect(r.ok).toBe(false);
    expect(r.leaks.map((l) => [l.handleId, l.ips])).toEqual([["lost", ["10.0.0.1"]]]);
    expect(r.leaks[0]!.newestAllocation).toBe(5);
    expect(r.missingHandles).toEqual(["lost"]);
    expect(r.handlesWithoutIps).toEqual(["empty"]);
    expect(r.handleMismatches).toEqual([{ handleId: "a", block: "10.0.0.0/29", recorded: 2, actual: 1 }]);
    expect(r.duplicateAddresses).toEqual(["10.0.0.0"]);
    expect(r.orphanBlocks).toEqual(["10.9.0.0/29"]);
    expect(r.malformedBlocks.map((m) => m.block)).toEqual(["10.0.0.8/29"]);
    expect(r.danglingAffinities).toEqual([
      { node: "x", cidr: "10.0.0.16/29", reason: "no such block" },
      { node: "m", cidr: "10.9.0.0/29", reason: "block affinity has no BlockAffinity" },
    ]);
  });
});
