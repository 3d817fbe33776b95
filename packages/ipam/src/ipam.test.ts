import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseIp } from "./cidr.js";
import { type IpamErrorCode, isIpamError } from "./errors.js";
import type { Ipam } from "./client-types.js";
import { createIpam } from "./ipam.js";
import { validatePools } from "./pools.js";
import { scopedGcSuite } from "./scoped-gc.suite.js";
import { putIpamConfig, putNode, putPool, putReservation, recordBlockWrites } from "./test-support.js";
import { type BlockAffinityObject, IpamKind, type IpamBlockObject, type IpamHandleObject } from "./types.js";

async function expectCode(p: Promise<unknown>, code: IpamErrorCode): Promise<Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    expect(isIpamError(e, code), `${(e as Error).message} (${(e as { code?: string }).code})`).toBe(true);
    return (e as { details: Record<string, unknown> }).details;
  }
  throw new Error(`expected ${code}`);
}

let ds: Datastore;
let clock = 1_000_000;
const ipamFor = (extra: Partial<Parameters<typeof createIpam>[0]> = {}) =>
  createIpam({ datastore: ds, configTtlMs: 0, now: () => clock, ...extra });

beforeEach(() => {
  ds = createMemoryDatastore();
  clock = 1_000_000;
});
afterEach(async () => {
  await ds.close();
});

describe("autoAssign", () => {
  it("assigns dual-stack addresses from a host-affine block and records block, affinity and handle", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    await putPool(ds, "v6", { cidr: "fd00::/120" });
    const ipam = ipamFor();
    const r = await ipam.autoAssign({
      handleId: "net.c1",
      node: "n1",
      num4: 1,
      num6: 1,
      attrs: { pod: "p", namespace: "ns" },
    });
    expect(r.ipv4).toHaveLength(1);
    expect(r.ipv6).toHaveLength(1);
    expect(r.ipv4[0]!.block).toMatch(/\/26$/);
    expect(r.ipv6[0]!.block).toMatch(/\/122$/);
    const blocks = await ds.list<IpamBlockObject>(IpamKind.Block);
    expect(blocks.items.map((b) => b.spec.affinity)).toEqual(["host:n1", "host:n1"]);
    const affinities = await ds.list(IpamKind.Affinity);
    expect(affinities.items).toHaveLength(2);
    const handle = await ds.get<IpamHandleObject>({ kind: IpamKind.Handle, name: "net.c1" });
    expect(Object.values(handle.spec.block)).toEqual([1, 1]);
    expect(await ipam.ipsByHandle("net.c1")).toEqual([r.ipv4[0]!.ip, r.ipv6[0]!.ip]);
    expect((await ipam.check(["net.c1"])).ok).toBe(true);
  });

  it("fills this host's block before claiming another, and spreads hosts over different blocks", async () => {
    await putPool(ds, "v4", { cidr: "10.1.0.0/16", blockSize: 28 });
    const a = ipamFor();
    const b = ipamFor();
    const ra = await a.autoAssign({ handleId: "a1", node: "na", num4: 16 });
    expect(new Set(ra.ipv4.map((x) => x.block)).size).toBe(1);
    const ra2 = await a.autoAssign({ handleId: "a2", node: "na", num4: 1 });
    expect(ra2.ipv4[0]!.block).not.toBe(ra.ipv4[0]!.block);
    const rb = await b.autoAssign({ handleId: "b1", node: "nb", num4: 1 });
    expect([ra.ipv4[0]!.block, ra2.ipv4[0]!.block]).not.toContain(rb.ipv4[0]!.block);
  });

  it("sticks to the block it last used among this host's blocks with room, else starts at a random one", async () => {
    await putPool(ds, "v4", { cidr: "10.2.0.0/24", blockSize: 28 });
    let r = 0;
    const a = ipamFor({ random: () => r });
    // Three full blocks of 16, then two addresses freed in each: three blocks with room.
    const full = await a.autoAssign({ handleId: "fill", node: "na", num4: 48 });
    const blocks = [...new Set(full.ipv4.map((x) => x.block))];
    expect(blocks).toHaveLength(3);
    for (const block of blocks) {
      const two = full.ipv4.filter((x) => x.block === block).slice(0, 2);
      await a.releaseIPs(two.map((x) => ({ ip: x.ip })));
    }
    const block = async () => (await a.autoAssign({ handleId: `h${r}`, node: "na", num4: 1 })).ipv4[0]!.block;
    r = 0.99; // the random start: the last block with room
    const first = await block();
    r = 0; // another start, but the client sticks to the block it used last, until it is full
    expect(await block()).toBe(first);
    const third = await block();
    expect(third).not.toBe(first);
    expect(await block()).toBe(third);
  });

  it("shares one frozen secondary-attributes object per node across its allocations (#20)", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const { datastore: spy, blockWrites } = recordBlockWrites(ds);
    const ipam = createIpam({ datastore: spy, configTtlMs: 0, now: () => clock });
    await ipam.autoAssign({ handleId: "a", node: "n1", num4: 1 });
    await ipam.autoAssign({ handleId: "b", node: "n1", num4: 1 });
    await ipam.autoAssign({ handleId: "c", node: "n1", num4: 1, attrs: { pod: "p" } });
    const attrs = blockWrites.at(-1)!.object.spec.attributes;
    expect(attrs.map((a) => a.secondary)).toEqual([{ node: "n1" }, { node: "n1" }, { pod: "p", node: "n1" }]);
    // One object per node, not per address: a filled block holds one, and a write need not check it.
    expect(attrs[1]!.secondary).toBe(attrs[0]!.secondary);
    expect(Object.isFrozen(attrs[0]!.secondary)).toBe(true);
    const stored = await ds.get<IpamBlockObject>({
      kind: IpamKind.Block,
      name: blockWrites.at(-1)!.object.metadata.name,
    });
    expect(stored.spec.attributes.map((a) => a.secondary)).toEqual(attrs.map((a) => a.secondary));
    await ipam.close();
  });

  it("is all-or-nothing across families", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/30", blockSize: 30 });
    const ipam = ipamFor();
    const details = await expectCode(
      ipam.autoAssign({ handleId: "h", node: "n", num4: 1, num6: 1 }),
      "no-pools",
    );
    expect(details.family).toBe(6);
    expect((await ds.list(IpamKind.Block)).items).toEqual([]);
    expect((await ds.list(IpamKind.Handle)).items).toEqual([]);
  });

  it("names the pool when it is exhausted, and assigns nothing", async () => {
    await putPool(ds, "tiny", { cidr: "10.0.0.0/30", blockSize: 30 });
    const ipam = ipamFor();
    await ipam.autoAssign({ handleId: "h1", node: "n", num4: 3 });
    const details = await expectCode(
      ipam.autoAssign({ handleId: "h2", node: "n", num4: 2 }),
      "pool-exhausted",
    );
    expect(details.pools).toEqual(["tiny"]);
    expect(details.available).toBe(1);
    expect((await ipam.utilisation())[0]!.inUse).toBe(3);
  });

  it("uses /32 and /128 blocks", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/30", blockSize: 32 });
    await putPool(ds, "v6", { cidr: "fd00::/126", blockSize: 128 });
    const ipam = ipamFor();
    const r = await ipam.autoAssign({ handleId: "h", node: "n", num4: 4, num6: 4 });
    expect(r.ipv4.map((x) => x.ip).sort()).toEqual(["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"]);
    expect(new Set(r.ipv6.map((x) => x.block)).size).toBe(4);
    await expectCode(ipam.autoAssign({ handleId: "h2", node: "n", num4: 1 }), "pool-exhausted");
  });

  // Enumerating the 2^58 blocks of the pool would never finish: completing at all is the proof.
  it("claims /122 blocks inside a /64 pool without enumerating it", async () => {
    await putPool(ds, "v6", { cidr: "fd00:1:2:3::/64" });
    const ipam = ipamFor();
    const r = await ipam.autoAssign({ handleId: "h", node: "n", num6: 200 });
    expect(r.ipv6).toHaveLength(200);
    expect(new Set(r.ipv6.map((x) => x.ip)).size).toBe(200);
    expect(new Set(r.ipv6.map((x) => x.block)).size).toBe(4);
    for (const a of r.ipv6) expect(a.ip.startsWith("fd00:1:2:3:")).toBe(true);
  });

  it("honours reservations", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/28", blockSize: 28 });
    await putReservation(ds, "r", ["10.0.0.0/30", "10.0.0.5"]);
    const ipam = ipamFor();
    const r = await ipam.autoAssign({ handleId: "h", node: "n", num4: 11 });
    const got = r.ipv4.map((x) => x.ip);
    for (const ip of ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.5"])
      expect(got).not.toContain(ip);
    await expectCode(ipam.autoAssign({ handleId: "h2", node: "n", num4: 1 }), "pool-exhausted");
    // A specific assignment may still use a reserved address (reservations govern automatic assignment).
    expect((await ipam.assignIP("10.0.0.5", { handleId: "h3" })).ip).toBe("10.0.0.5");
  });

  it("stops using a pool disabled between two allocations", async () => {
    await putPool(ds, "a", { cidr: "10.0.0.0/24" });
    await putPool(ds, "b", { cidr: "10.1.0.0/24" });
    const ipam = ipamFor({ configTtlMs: 60_000 });
    const first = await ipam.autoAssign({ handleId: "h1", node: "n", num4: 1, pools: ["a"] });
    expect(first.ipv4[0]!.pool).toBe("a");
    // The cached config still says enabled: the pool precondition in the transaction catches it.
    await putPool(ds, "a", { cidr: "10.0.0.0/24", disabled: true });
    const second = await ipam.autoAssign({ handleId: "h2", node: "n", num4: 1 });
    expect(second.ipv4[0]!.pool).toBe("b");
    await expectCode(ipam.autoAssign({ handleId: "h3", node: "n", num4: 1, pools: ["a"] }), "no-pools");
  });

  it("follows node selector changes", async () => {
    await putPool(ds, "rack1", { cidr: "10.0.0.0/24", nodeSelector: "rack == 'r1'" });
    await putPool(ds, "rack2", { cidr: "10.0.1.0/24", nodeSelector: "rack in {'r2', 'r3'} && !has(drain)" });
    await putNode(ds, "n", { rack: "r1" });
    const ipam = ipamFor();
    expect((await ipam.autoAssign({ handleId: "h1", node: "n", num4: 1 })).ipv4[0]!.pool).toBe("rack1");
    await putNode(ds, "n", { rack: "r2" });
    expect((await ipam.autoAssign({ handleId: "h2", node: "n", num4: 1 })).ipv4[0]!.pool).toBe("rack2");
    await putNode(ds, "n", {});
    await expectCode(ipam.autoAssign({ handleId: "h3", node: "n", num4: 1 }), "no-pools");
  });

  it("borrows from another host's block unless strictAffinity", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/28", blockSize: 28 });
    const ipam = ipamFor();
    const a = await ipam.autoAssign({ handleId: "a", node: "na", num4: 1 });
    const b = await ipam.autoAssign({ handleId: "b", node: "nb", num4: 1 });
    expect(b.ipv4[0]!.block).toBe(a.ipv4[0]!.block);
    await putIpamConfig(ds, { strictAffinity: true });
    await expectCode(ipam.autoAssign({ handleId: "c", node: "nc", num4: 1 }), "pool-exhausted");
  });

  it("limits blocks per host and then borrows", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24", blockSize: 30 });
    await putIpamConfig(ds, { maxBlocksPerHost: 2 });
    const ipam = ipamFor();
    await ipam.autoAssign({ handleId: "other", node: "nb", num4: 1 });
    const r = await ipam.autoAssign({ handleId: "h", node: "na", num4: 9 });
    const blocks = (await ds.list<IpamBlockObject>(IpamKind.Block)).items;
    expect(blocks.filter((b) => b.spec.affinity === "host:na")).toHaveLength(2);
    expect(
      r.ipv4.filter((x) => x.block === blocks.find((b) => b.spec.affinity === "host:nb")!.spec.cidr),
    ).toHaveLength(1);
  });

  it("reclaims an empty block another host has held for long enough", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/30", blockSize: 30 });
    const ipam = ipamFor({ reclaimEmptyBlockAfterMs: 60_000 });
    await ipam.autoAssign({ handleId: "a", node: "na", num4: 1 });
    await ipam.releaseByHandle("a");
    await putIpamConfig(ds, { strictAffinity: true });
    await expectCode(ipam.autoAssign({ handleId: "b", node: "nb", num4: 1 }), "pool-exhausted");
    clock += 60_000;
    const r = await ipam.autoAssign({ handleId: "b", node: "nb", num4: 1 });
    expect(r.ipv4).toHaveLength(1);
    const [block] = (await ds.list<IpamBlockObject>(IpamKind.Block)).items;
    expect(block!.spec.affinity).toBe("host:nb");
    const affs = await ds.list<{ kind: string; metadata: { name: string }; spec: { node: string } }>(
      IpamKind.Affinity,
    );
    expect(affs.items.map((a) => a.spec.node)).toEqual(["nb"]);
    expect((await ipam.check(["b"])).ok).toBe(true);
  });

  it("uses Manual pools only when named, and respects allowedUses", async () => {
    await putPool(ds, "manual", { cidr: "10.0.0.0/24", assignmentMode: "Manual" });
    await putPool(ds, "tunnel", { cidr: "10.0.1.0/24", allowedUses: ["Tunnel"] });
    const ipam = ipamFor();
    await expectCode(ipam.autoAssign({ handleId: "h", node: "n", num4: 1 }), "no-pools");
    expect(
      (await ipam.autoAssign({ handleId: "h", node: "n", num4: 1, pools: ["manual"] })).ipv4[0]!.pool,
    ).toBe("manual");
    expect((await ipam.autoAssign({ handleId: "t", node: "n", num4: 1, use: "Tunnel" })).ipv4[0]!.pool).toBe(
      "tunnel",
    );
  });

  it("refuses overlapping pools", async () => {
    await putPool(ds, "a", { cidr: "10.0.0.0/16" });
    await putPool(ds, "b", { cidr: "10.0.128.0/24" });
    const ipam = ipamFor();
    const details = await expectCode(
      ipam.autoAssign({ handleId: "h", node: "n", num4: 1 }),
      "overlapping-pools",
    );
    expect(details.pools).toEqual(["a", "b"]);
    expect(() =>
      validatePools([
        { name: "a", spec: { cidr: "10.0.0.0/16" } },
        { name: "b", spec: { cidr: "10.0.128.0/24" } },
      ]),
    ).toThrow(/overlap/);
  });

  it("validates its arguments", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    await expectCode(ipam.autoAssign({ handleId: "bad handle", node: "n", num4: 1 }), "invalid");
    await expectCode(ipam.autoAssign({ handleId: "h", node: "n" }), "invalid");
    await expectCode(ipam.autoAssign({ handleId: "h", node: "n", num4: -1 }), "invalid");
  });
});

describe("assignIP", () => {
  it("assigns a specific address once, and rejects conflicts and addresses outside pools", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    await putPool(ds, "off", { cidr: "10.9.0.0/24", disabled: true });
    const ipam = ipamFor();
    const a = await ipam.assignIP("10.0.0.77", { handleId: "h1", node: "n" });
    expect(a.block).toBe("10.0.0.64/26");
    const details = await expectCode(ipam.assignIP("10.0.0.77", { handleId: "h2" }), "already-allocated");
    expect(details.handleId).toBe("h1");
    await expectCode(ipam.assignIP("192.168.0.1", { handleId: "h3" }), "not-in-pool");
    await expectCode(ipam.assignIP("10.9.0.1", { handleId: "h3" }), "pool-disabled");
    await expectCode(ipam.assignIP("10.0.0.300", { handleId: "h3" }), "invalid");
    // Auto-assignment on the same node uses the block the specific assignment claimed but skips .77.
    const r = await ipam.autoAssign({ handleId: "h4", node: "n", num4: 64 - 1 });
    expect(r.ipv4.map((x) => x.ip)).not.toContain("10.0.0.77");
    expect(new Set(r.ipv4.map((x) => x.block))).toEqual(new Set(["10.0.0.64/26"]));
  });
});

describe("assignIP for the same handle again", () => {
  it("returns the address it already holds without a second allocation, even from a pool disabled since", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    const first = await ipam.assignIP("10.0.0.50", { handleId: "net.c1", node: "n" });
    const again = await ipamFor().assignIP("10.0.0.50", { handleId: "net.c1", node: "n" });
    expect(again).toEqual(first);
    const handle = await ds.get<IpamHandleObject>({ kind: IpamKind.Handle, name: "net.c1" });
    expect(handle.spec.block).toEqual({ "10.0.0.0/26": 1 });
    expect((await ipam.check(["net.c1"])).allocated).toBe(1);
    await putPool(ds, "v4", { cidr: "10.0.0.0/24", disabled: true });
    expect((await ipam.assignIP("10.0.0.50", { handleId: "net.c1", node: "n" })).ip).toBe("10.0.0.50");
    const d = await expectCode(
      ipam.assignIP("10.0.0.50", { handleId: "net.c2", node: "n" }),
      "already-allocated",
    );
    expect(d).toMatchObject({ ip: "10.0.0.50", handleId: "net.c1", requestedBy: "net.c2", pool: "v4" });
    const off = await expectCode(
      ipam.assignIP("10.0.0.51", { handleId: "net.c2", node: "n" }),
      "pool-disabled",
    );
    expect(off).toMatchObject({ pool: "v4" });
    expect((await ipam.check(["net.c1"])).ok).toBe(true);
  });

  it("answers from the stored block, not a stale cached copy", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const a = ipamFor();
    const b = ipamFor();
    await a.assignIP("10.0.0.50", { handleId: "net.c1", node: "n" });
    // Another client releases it and hands it to another handle; `a` still caches the old block.
    await b.releaseByHandle("net.c1");
    await b.assignIP("10.0.0.50", { handleId: "net.c2", node: "n" });
    await expectCode(a.assignIP("10.0.0.50", { handleId: "net.c1", node: "n" }), "already-allocated");
  });
});

describe("assignIP under strictAffinity", () => {
  it("assigns only inside the node's own blocks, as Calico does", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24", blockSize: 26 });
    await putIpamConfig(ds, { strictAffinity: true });
    const ipam = ipamFor();
    const a = (await ipam.autoAssign({ handleId: "a", node: "na", num4: 1 })).ipv4[0]!;
    const base = a.block.split("/")[0]!.split(".").map(Number);
    const inA = `${base[0]}.${base[1]}.${base[2]}.${base[3]! + 10}`;
    const details = await expectCode(ipam.assignIP(inA, { handleId: "b", node: "nb" }), "block-in-use");
    expect(details.affinity).toBe("host:na");
    await expectCode(ipam.assignIP(inA, { handleId: "b" }), "block-in-use");
    expect((await ipam.assignIP(inA, { handleId: "b", node: "na" })).block).toBe(a.block);
    // An unclaimed block is claimed for the node asking.
    const other = a.block.startsWith("10.0.0.0/") ? "10.0.0.200" : "10.0.0.5";
    expect((await ipam.assignIP(other, { handleId: "c", node: "nb" })).ip).toBe(other);
    expect((await ipam.check(["a", "b", "c"])).ok).toBe(true);
  });
});

describe("release", () => {
  it("releases by IP (idempotently) and by handle, keeping handles in step", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    const r = await ipam.autoAssign({ handleId: "h", node: "n", num4: 3 });
    const [x, y, z] = r.ipv4.map((a) => a.ip) as [string, string, string];
    const rel = await ipam.releaseIPs([x, "10.0.0.200", "10.99.0.1"]);
    expect(rel.released).toEqual([{ ip: x, handleId: "h" }]);
    expect(rel.unallocated.sort()).toEqual(["10.0.0.200", "10.99.0.1"]);
    expect((await ipam.releaseIPs([x])).unallocated).toEqual([x]);
    const handle = await ds.get<IpamHandleObject>({ kind: IpamKind.Handle, name: "h" });
    expect(Object.values(handle.spec.block)).toEqual([2]);
    expect((await ipam.releaseByHandle("h")).sort()).toEqual([y, z].sort());
    expect(await ipam.releaseByHandle("h")).toEqual([]);
    await expect(ds.get({ kind: IpamKind.Handle, name: "h" })).rejects.toMatchObject({ code: "not-found" });
    expect((await ipam.check([])).ok).toBe(true);
  });

  it("releases a large set spread over many blocks (in chunks of one transaction each)", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24", blockSize: 30 });
    await putIpamConfig(ds, { maxBlocksPerHost: 0 });
    const ipam = ipamFor();
    const r = await ipam.autoAssign({ handleId: "many", node: "n", num4: 100 });
    expect(new Set(r.ipv4.map((a) => a.block)).size).toBe(25);
    const rel = await ipam.releaseIPs(r.ipv4.map((a) => a.ip));
    expect(rel.released).toHaveLength(100);
    expect(await ipam.ipsByHandle("many")).toEqual([]);
    await expect(ds.get({ kind: IpamKind.Handle, name: "many" })).rejects.toMatchObject({
      code: "not-found",
    });
    expect((await ipam.check([])).ok).toBe(true);
  });

  it("a stale release (old sequence number) cannot free the address's new owner", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/30", blockSize: 30 });
    const ipam = ipamFor();
    const first = (await ipam.autoAssign({ handleId: "old", node: "n", num4: 1 })).ipv4[0]!;
    await ipam.releaseByHandle("old");
    await ipam.autoAssign({ handleId: "fill", node: "n", num4: 3 });
    const reused = (await ipam.autoAssign({ handleId: "new", node: "n", num4: 1 })).ipv4[0]!;
    expect(reused.ip).toBe(first.ip);
    const stale = await ipam.releaseIPs([{ ip: first.ip, sequenceNumber: first.sequenceNumber }]);
    expect(stale.skipped).toEqual([{ ip: first.ip, reason: "sequence-mismatch" }]);
    expect(await ipam.ipsByHandle("new")).toEqual([first.ip]);
  });

  it("a stale release cannot free the same address in a block deleted and created again", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/30", blockSize: 30 });
    const ipam = ipamFor();
    const first = (await ipam.autoAssign({ handleId: "old", node: "na", num4: 1 })).ipv4[0]!;
    // The node goes away, then its last pod: the unaffine, empty block is deleted.
    await ipam.releaseHostAffinities("na");
    await ipam.releaseByHandle("old");
    expect((await ds.list(IpamKind.Block)).items).toEqual([]);
    clock += 1;
    const reused = (await ipam.autoAssign({ handleId: "new", node: "nb", num4: 1 })).ipv4[0]!;
    expect(reused.ip).toBe(first.ip);
    expect(reused.sequenceNumber).not.toBe(first.sequenceNumber);
    const stale = await ipam.releaseIPs([{ ip: first.ip, sequenceNumber: first.sequenceNumber }]);
    expect(stale.skipped).toEqual([{ ip: first.ip, reason: "sequence-mismatch" }]);
    expect(await ipam.ipsByHandle("new")).toEqual([first.ip]);
  });

  it("honours a reuse cool-down", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/30", blockSize: 30 });
    const ipam = ipamFor({ reuseCooldownMs: 1000 });
    await ipam.autoAssign({ handleId: "a", node: "n", num4: 4 });
    await ipam.releaseByHandle("a");
    await expectCode(ipam.autoAssign({ handleId: "b", node: "n", num4: 1 }), "pool-exhausted");
    clock += 1000;
    expect((await ipam.autoAssign({ handleId: "b", node: "n", num4: 1 })).ipv4).toHaveLength(1);
  });

  it("keeps the cool-down when the emptied block loses its host", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/30", blockSize: 30 });
    const ipam = ipamFor({ reuseCooldownMs: 1000 });
    await ipam.autoAssign({ handleId: "a", node: "na", num4: 4 });
    // The node goes away while its pod still holds the addresses, then the pod is deleted: the block
    // is empty and unaffine, but its addresses were freed a moment ago.
    expect((await ipam.releaseHostAffinities("na")).nonEmpty).toHaveLength(1);
    await ipam.releaseByHandle("a");
    await expectCode(ipam.autoAssign({ handleId: "b", node: "nb", num4: 1 }), "pool-exhausted");
    // A host whose affinities are released while the block is empty but cooling down: same rule.
    clock += 1000;
    const b = await ipam.autoAssign({ handleId: "b", node: "nb", num4: 4 });
    expect(b.ipv4).toHaveLength(4);
    await ipam.releaseByHandle("b");
    expect((await ipam.releaseHostAffinities("nb")).released).toHaveLength(1);
    await expectCode(ipam.autoAssign({ handleId: "c", node: "nc", num4: 1 }), "pool-exhausted");
    clock += 1000;
    const c = await ipam.autoAssign({ handleId: "c", node: "nc", num4: 1 });
    // The block left behind is taken over by the next host that needs it.
    const [block] = (await ds.list<IpamBlockObject>(IpamKind.Block)).items;
    expect(block!.spec.affinity).toBe("host:nc");
    expect((await ipam.check(["c"])).ok).toBe(true);
    expect(c.ipv4).toHaveLength(1);
  });

  it("releases a host's affinities: empty blocks go, non-empty ones stay unaffine", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24", blockSize: 30 });
    const ipam = ipamFor();
    await ipam.autoAssign({ handleId: "keep", node: "n", num4: 1 });
    await ipam.autoAssign({ handleId: "gone", node: "n", num4: 4 });
    await ipam.releaseByHandle("gone");
    const res = await ipam.releaseHostAffinities("n");
    expect(res.released).toHaveLength(2);
    expect(res.nonEmpty).toHaveLength(1);
    const blocks = (await ds.list<IpamBlockObject>(IpamKind.Block)).items;
    expect(blocks).toHaveLength(1);
    expect(blocks[0]!.spec.affinity).toBeNull();
    expect((await ds.list(IpamKind.Affinity)).items).toEqual([]);
    // Releasing the last address of an unaffine block deletes it.
    await ipam.releaseByHandle("keep");
    expect((await ds.list(IpamKind.Block)).items).toEqual([]);
  });
});

describe("claimAffinity", () => {
  it("claims blocks for a node and refuses blocks held by another", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24", blockSize: 26 });
    const ipam = ipamFor();
    const r = await ipam.claimAffinity("10.0.0.0/25", "na");
    expect(r.claimed).toEqual(["10.0.0.0/26", "10.0.0.64/26"]);
    const again = await ipam.claimAffinity("10.0.0.0/26", "na");
    expect(again.claimed).toEqual(["10.0.0.0/26"]);
    const other = await ipam.claimAffinity("10.0.0.0/26", "nb");
    expect(other.failed.map((f) => f.cidr)).toEqual(["10.0.0.0/26"]);
    const a = await ipam.autoAssign({ handleId: "h", node: "na", num4: 1 });
    expect(["10.0.0.0/26", "10.0.0.64/26"]).toContain(a.ipv4[0]!.block);
    await expectCode(ipam.claimAffinity("10.5.0.0/26", "na"), "not-in-pool");
  });
});

describe("client behaviour", () => {
  it("adds to an existing handle on a second assignment", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const a = ipamFor();
    const b = ipamFor();
    await a.autoAssign({ handleId: "h", node: "n", num4: 1 });
    // `b` does not know the handle exists: its optimistic create conflicts, it reads and updates.
    await b.autoAssign({ handleId: "h", node: "n", num4: 2 });
    const handle = await ds.get<IpamHandleObject>({ kind: IpamKind.Handle, name: "h" });
    expect(Object.values(handle.spec.block)).toEqual([3]);
    expect(await a.ipsByHandle("h")).toHaveLength(3);
  });

  it("does not trust a cached 'no such handle' when a reused handle id comes back", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const a = ipamFor();
    const b = ipamFor();
    await a.autoAssign({ handleId: "net.c1", node: "n", num4: 1 });
    await a.releaseByHandle("net.c1"); // `a` now remembers the handle as gone
    const again = await b.autoAssign({ handleId: "net.c1", node: "m", num4: 2 }); // a retried ADD
    await a.releaseIPs([again.ipv4[0]!.ip]);
    expect((await a.check(["net.c1"])).ok).toBe(true);
    const handle = await ds.get<IpamHandleObject>({ kind: IpamKind.Handle, name: "net.c1" });
    expect(Object.values(handle.spec.block)).toEqual([1]);
  });

  it("honours an aborted signal and refuses calls after close", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    const ac = new AbortController();
    ac.abort();
    await expectCode(ipam.autoAssign({ handleId: "h", node: "n", num4: 1, signal: ac.signal }), "aborted");
    await ipam.close();
    await expectCode(ipam.autoAssign({ handleId: "h", node: "n", num4: 1 }), "closed");
  });
});

describe("affinity states", () => {
  it("confirms a pending affinity left behind by a crashed two-phase claim", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/26" });
    await ds.create({
      kind: IpamKind.Affinity,
      metadata: { name: "n-10-0-0-0-26" },
      spec: { node: "n", cidr: "10.0.0.0/26", state: "pending", deleted: false },
    });
    const ipam = ipamFor();
    const r = await ipam.autoAssign({ handleId: "h", node: "n", num4: 1 });
    expect(r.ipv4[0]!.block).toBe("10.0.0.0/26");
    const aff = await ds.get<BlockAffinityObject>({ kind: IpamKind.Affinity, name: "n-10-0-0-0-26" });
    expect(aff.spec.state).toBe("confirmed");
    expect((await ipam.check(["h"])).ok).toBe(true);
  });

  it("reports an affinity whose block is missing", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    await ds.create({
      kind: IpamKind.Affinity,
      metadata: { name: "x-10-0-0-64-26" },
      spec: { node: "x", cidr: "10.0.0.64/26", state: "pending", deleted: false },
    });
    const report = await ipamFor().check([]);
    expect(report.danglingAffinities).toEqual([{ node: "x", cidr: "10.0.0.64/26", reason: "no such block" }]);
  });
});

describe("check and gc", () => {
  it("reports leaks, missing handles and count mismatches; gc releases only confirmed leaks", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    await ipam.autoAssign({ handleId: "live", node: "n", num4: 1 });
    await ipam.autoAssign({ handleId: "leak-old", node: "n", num4: 2 });
    clock += 10_000;
    await ipam.autoAssign({ handleId: "leak-new", node: "n", num4: 1 });
    // Simulate a foreign writer that lost a handle object.
    await ds.delete({ kind: IpamKind.Handle, name: "leak-old" });
    const report = await ipam.check(["live"]);
    expect(report.ok).toBe(false);
    expect(report.leaks.map((l) => l.handleId).sort()).toEqual(["leak-new", "leak-old"]);
    expect(report.missingHandles).toEqual(["leak-old"]);
    const gc = await ipam.gc(["live"], 5_000);
    expect(gc.released.map((r) => r.handleId)).toEqual(["leak-old"]);
    expect(gc.released[0]!.ips).toHaveLength(2);
    expect(gc.deferred).toEqual(["leak-new"]);
    const after = await ipam.check(["live", "leak-new"]);
    expect(after.ok).toBe(true);
    expect(after.allocated).toBe(2);
  });

  it("reports utilisation per pool and block", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    await putPool(ds, "v6", { cidr: "fd00::/64" });
    const ipam = ipamFor();
    await ipam.autoAssign({ handleId: "h", node: "n", num4: 5, num6: 2 });
    const u = await ipam.utilisation();
    const v4 = u.find((p) => p.name === "v4")!;
    expect(v4).toMatchObject({ capacity: 256n, inUse: 5, free: 251n });
    expect(v4.blocks).toEqual([
      { cidr: v4.blocks[0]!.cidr, affinity: "host:n", capacity: 64, inUse: 5, free: 59 },
    ]);
    const v6 = u.find((p) => p.name === "v6")!;
    expect(v6.capacity).toBe(2n ** 64n);
    expect(v6.inUse).toBe(2);
  });
});

describe("concurrency in one process", () => {
  it("many clients of one node never hand out an address twice", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24", blockSize: 28 });
    const clients: Ipam[] = Array.from({ length: 6 }, () => ipamFor({ configTtlMs: 1000 }));
    const results = await Promise.all(
      clients.flatMap((c, i) =>
        Array.from({ length: 20 }, (_, j) =>
          c.autoAssign({ handleId: `c${i}-${j}`, node: i % 2 ? "x" : "y", num4: 1 }),
        ),
      ),
    );
    const ips = results.map((r) => r.ipv4[0]!.ip);
    expect(new Set(ips).size).toBe(120);
    for (const ip of ips) expect(parseIp(ip).version).toBe(4);
    expect((await clients[0]!.check(results.map((_, k) => `c${Math.floor(k / 20)}-${k % 20}`))).ok).toBe(
      true,
    );
  });
});

describe("scoped check and gc (memory datastore)", () => {
  scopedGcSuite(async () => createMemoryDatastore());

  it("records the allocating node; attrs naming another node are invalid", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    await ipam.autoAssign({ handleId: "h", node: "n1", num4: 1, attrs: { pod: "p" } });
    const [block] = (await ds.list<IpamBlockObject>(IpamKind.Block)).items;
    expect(block!.spec.attributes[0]!.secondary).toEqual({ pod: "p", node: "n1" });
    await expectCode(
      ipam.autoAssign({ handleId: "h2", node: "n1", num4: 1, attrs: { node: "n2" } }),
      "invalid",
    );
    await expectCode(ipam.check([], { scope: { node: "bad node" } }), "invalid");
    await expectCode(ipam.gc([], 0, { scope: { handlePrefix: "" } }), "invalid");
  });

  it("an address recorded without a node in an unaffine block belongs to no node's scope", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    // assignIP without a node makes an unaffine block and records no node (an older writer).
    await ipam.assignIP("10.0.0.5", { handleId: "net.x" });
    clock += 60_000;
    const scoped = await ipam.gc([], 1_000, { scope: { node: "n1" } });
    expect(scoped.report.leaks).toEqual([]);
    expect(scoped.released).toEqual([]);
    const byPrefix = await ipam.gc([], 1_000, { scope: { handlePrefix: "net." } });
    expect(byPrefix.released).toEqual([{ handleId: "net.x", ips: ["10.0.0.5"] }]);
  });

  it("gc deletes empty handle objects of its prefix that are not live", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    for (const name of ["net.empty", "net.live", "other.empty"]) {
      await ds.create({
        apiVersion: IpamKind.apiVersion,
        kind: IpamKind.Handle,
        metadata: { name },
        spec: { handleId: name, block: {}, deleted: false },
      });
    }
    const r = await ipamFor().gc(["net.live"], 0, { scope: { node: "n1", handlePrefix: "net." } });
    expect(r.removedHandles).toEqual(["net.empty"]);
    const left = (await ds.list<IpamHandleObject>(IpamKind.Handle)).items.map((h) => h.metadata.name);
    expect(left.sort()).toEqual(["net.live", "other.empty"]);
  });
});

describe("maxBlocksPerHost counts blocks per IP version", () => {
  beforeEach(async () => {
    // 16 IPv4 blocks of 64 and 16 IPv6 blocks of 64.
    await putPool(ds, "v4", { cidr: "10.1.0.0/22", blockSize: 26 });
    await putPool(ds, "v6", { cidr: "fd00:1::/118", blockSize: 122 });
  });

  it("a node holding 16 IPv6 blocks still claims IPv4 blocks up to the limit", async () => {
    const ipam = ipamFor();
    const v6 = await ipam.autoAssign({ handleId: "six", node: "node-a", num6: 1024 });
    expect(new Set(v6.ipv6.map((a) => a.block)).size).toBe(16);
    // 20 blocks per family by default: all 16 IPv4 blocks are within reach, so 1024 addresses.
    const v4 = await ipam.autoAssign({ handleId: "four", node: "node-a", num4: 1024 });
    expect(new Set(v4.ipv4.map((a) => a.block)).size).toBe(16);
    const details = await expectCode(
      ipam.autoAssign({ handleId: "more", node: "node-a", num4: 1 }),
      "pool-exhausted",
    );
    expect(details).toMatchObject({
      reason: "pool-exhausted",
      poolFree: [{ pool: "v4", free: "0", capacity: "1024" }],
      hostBlocks: 16,
      maxBlocksPerHost: 20,
    });
  });

  it("at the limit a host borrows from other blocks unless strictAffinity; the error gives the numbers", async () => {
    await putIpamConfig(ds, { maxBlocksPerHost: 4, strictAffinity: true });
    const ipam = ipamFor();
    await ipam.autoAssign({ handleId: "six", node: "node-a", num6: 64 * 4 });
    await ipam.autoAssign({ handleId: "four", node: "node-a", num4: 64 * 4 });
    await ipam.autoAssign({ handleId: "b", node: "node-b", num4: 1 });
    let err: unknown;
    try {
      await ipam.autoAssign({ handleId: "more", node: "node-a", num4: 1 });
    } catch (e) {
      err = e;
    }
    expect(isIpamError(err, "host-block-limit"), String(err)).toBe(true);
    const e = err as Error & { details: Record<string, unknown> };
    expect(e.message).toContain("host node-a has 4 of 4 IPv4 blocks; pool v4: 767 of 1024 free");
    expect(e.message).toContain("strictAffinity");
    expect(e.details).toMatchObject({
      reason: "host-block-limit",
      node: "node-a",
      family: 4,
      hostBlocks: 4,
      maxBlocksPerHost: 4,
      strictAffinity: true,
      poolFree: [{ pool: "v4", free: "767", capacity: "1024" }],
    });
    // Without strictAffinity the host at its limit borrows from node-b's block.
    await putIpamConfig(ds, { maxBlocksPerHost: 4, strictAffinity: false });
    const borrowed = await ipam.autoAssign({ handleId: "more", node: "node-a", num4: 63 });
    const bBlock = (await ipam.ipsByHandle("b"))[0]!;
    expect(new Set(borrowed.ipv4.map((a) => a.block)).size).toBe(1);
    expect(parseIp(bBlock).value >> 6n).toBe(parseIp(borrowed.ipv4[0]!.ip).value >> 6n);
    // node-b's block is full now too: still the host limit (the pool has 704 addresses in unclaimed blocks).
    const d = await expectCode(
      ipam.autoAssign({ handleId: "last", node: "node-a", num4: 1 }),
      "host-block-limit",
    );
    expect(d).toMatchObject({ hostBlocks: 4, poolFree: [{ pool: "v4", free: "704", capacity: "1024" }] });
    // IPv6 has its own count: 4 full IPv6 blocks, the same answer for IPv6, IPv4 untouched by it.
    await expectCode(ipam.autoAssign({ handleId: "six2", node: "node-a", num6: 1 }), "host-block-limit");
  });
});

describe("validation (issue 11 §7)", () => {
  it("an unknown use is invalid, not no-pools", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const d = await expectCode(
      ipamFor().autoAssign({ handleId: "h", node: "n", num4: 1, use: "Wrokload" as never }),
      "invalid",
    );
    expect(d.use).toBe("Wrokload");
  });

  it("negative sequence numbers and negative or NaN timing options are rejected", async () => {
    await putPool(ds, "v4", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    const r = await ipam.autoAssign({ handleId: "h", node: "n", num4: 1 });
    const ip = r.ipv4[0]!.ip;
    await expectCode(ipam.releaseIPs([{ ip, sequenceNumber: -1 }]), "invalid");
    await expectCode(ipam.releaseIPs([{ ip, sequenceNumber: 1.5 }]), "invalid");
    expect(await ipam.ipsByHandle("h")).toEqual([ip]);
    for (const option of ["backoffMs", "reuseCooldownMs", "reclaimEmptyBlockAfterMs", "configTtlMs"]) {
      expect(() => createIpam({ datastore: ds, [option]: -1 }), option).toThrow(/must be a number >= 0/);
      expect(() => createIpam({ datastore: ds, [option]: Number.NaN }), option).toThrow(/>= 0/);
    }
    expect(() =>
      createIpam({ datastore: ds, reclaimEmptyBlockAfterMs: Number.POSITIVE_INFINITY }),
    ).not.toThrow();
    // A stored block with a negative sequence number is reported malformed.
    const [block] = (await ds.list<IpamBlockObject>(IpamKind.Block)).items;
    await ds.update({ ...block!, spec: { ...block!.spec, sequenceNumber: -5 } });
    const report = await ipam.check(["h"]);
    expect(report.malformedBlocks[0]!.problems).toContain("sequenceNumber -5 is not an integer >= 0");
  });

  it("a stored pool that fails validation is reported by name, not skipped", async () => {
    await putPool(ds, "good", { cidr: "10.0.0.0/24" });
    const ipam = ipamFor();
    const held = await ipam.autoAssign({ handleId: "h", node: "n", num4: 1 });
    await putPool(ds, "broken", { cidr: "10.1.0.0/24", blockSize: 20 });
    for (const p of [
      ipam.autoAssign({ handleId: "h2", node: "n", num4: 1 }),
      ipam.assignIP("10.0.0.9", { handleId: "h3", node: "n" }),
      ipam.claimAffinity("10.0.0.128/26", "n"),
    ]) {
      const d = await expectCode(p, "invalid-pool");
      expect(d).toMatchObject({ pool: "broken", pools: ["broken"] });
    }
    let message = "";
    await ipam.autoAssign({ handleId: "h2", node: "n", num4: 1 }).catch((e: Error) => {
      message = e.message;
    });
    expect(message).toContain("broken");
    const report = await ipam.check(["h"]);
    expect(report.ok).toBe(false);
    expect(report.invalidPools).toEqual([{ pool: "broken", error: "pool smaller than its block size" }]);
    // Releases still work.
    expect(await ipam.releaseByHandle("h")).toEqual([held.ipv4[0]!.ip]);
  });
});
