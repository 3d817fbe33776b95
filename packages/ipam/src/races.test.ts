/**
 * Deterministic interleavings: a datastore wrapper pauses one client between its reads and its
 * transaction while another client commits, then lets it go on. Each case is a race that, unguarded,
 * would hand out an address twice or release what is no longer a leak.
 */
import { createMemoryDatastore, type Datastore } from "@margay/datastore";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ordinalAddress } from "./block.js";
import { formatIp, parseCidr } from "./cidr.js";
import { isIpamError } from "./errors.js";
import { createIpam } from "./ipam.js";
import { putIpamConfig, putPool } from "./test-support.js";
import { IpamKind, type IpamBlockObject } from "./types.js";

/**
 * A datastore whose next call of `method` (matching `when`, if given) waits until `release()` is
 * called; `reached` resolves once a call is held there.
 */
function pausing(inner: Datastore) {
  let gate:
    | { method: string; when: (args: unknown[]) => boolean; reached: () => void; go: Promise<void> }
    | undefined;
  const ds: Datastore = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return async (...args: unknown[]) => {
        const g = gate;
        if (g && g.method === prop && g.when(args)) {
          gate = undefined;
          g.reached();
          await g.go;
        }
        return v.apply(target, args);
      };
    },
  });
  function pauseNext(
    method: keyof Datastore = "transaction",
    when: (args: unknown[]) => boolean = () => true,
  ): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const r = new Promise<void>((res) => (reached = res));
    const go = new Promise<void>((res) => (release = res));
    gate = { method: String(method), when, reached, go };
    return { reached: r, release };
  }
  return { ds, pauseNext };
}

let mem: Datastore;
let clock = 1_000_000;

beforeEach(() => {
  mem = createMemoryDatastore();
  clock = 1_000_000;
});
afterEach(async () => {
  await mem.close();
});

/** Every allocated address in the stored blocks, with its holder; fails on an address held twice. */
async function holders(ds: Datastore): Promise<Map<string, string | null>> {
  const out = new Map<string, string | null>();
  for (const b of (await ds.list<IpamBlockObject>(IpamKind.Block)).items) {
    const cidr = parseCidr(b.spec.cidr);
    b.spec.allocations.forEach((idx, o) => {
      if (idx === null) return;
      const ip = formatIp(cidr.version, ordinalAddress(cidr, o));
      expect(out.has(ip), `${ip} allocated in two blocks`).toBe(false);
      out.set(ip, b.spec.attributes[idx]!.handleId);
    });
  }
  return out;
}

describe("block size changed under allocated blocks", () => {
  it("assignIP does not carve a second, overlapping block for an address already held", async () => {
    await putPool(mem, "v4", { cidr: "10.0.0.0/24", blockSize: 26 });
    const a = createIpam({ datastore: mem, configTtlMs: 0 });
    const held = (await a.autoAssign({ handleId: "a", node: "na", num4: 1 })).ipv4[0]!;
    await putPool(mem, "v4", { cidr: "10.0.0.0/24", blockSize: 28 });
    const b = createIpam({ datastore: mem, configTtlMs: 0 });
    await expect(b.assignIP(held.ip, { handleId: "b", node: "nb" })).rejects.toSatisfy((e) =>
      isIpamError(e, "already-allocated"),
    );
    // The address still belongs to its first owner only, and a free address of the old block is
    // assigned inside that block rather than in a new, overlapping one.
    const [o1, o2, o3, o4] = held.block.split("/")[0]!.split(".").map(Number) as [
      number,
      number,
      number,
      number,
    ];
    const candidates = [`${o1}.${o2}.${o3}.${o4 + 1}`, `${o1}.${o2}.${o3}.${o4 + 2}`];
    const other = candidates.find((ip) => ip !== held.ip)!;
    const free = (await b.assignIP(other, { handleId: "c" })).block;
    expect(free).toBe(held.block);
    const owners = await holders(mem);
    expect(owners.get(held.ip)).toBe("a");
    expect((await b.check(["a", "c"])).ok).toBe(true);
  });

  it("assignIP into an old-size block re-reads it after a conflict instead of retrying a stale copy", async () => {
    await putPool(mem, "v4", { cidr: "10.0.0.0/28", blockSize: 30 });
    const a = createIpam({ datastore: mem, configTtlMs: 0 });
    const first = (await a.autoAssign({ handleId: "a1", node: "na", num4: 1 })).ipv4[0]!;
    await putPool(mem, "v4", { cidr: "10.0.0.0/28", blockSize: 29 });
    const s = createIpam({ datastore: mem, configTtlMs: 0, maxAttempts: 5 });
    await s.utilisation(); // s now caches the old /30 block, listed under the new pool revision
    await a.autoAssign({ handleId: "a2", node: "na", num4: 1 }); // and its copy goes stale
    const [o1, o2, o3, o4] = first.block.split("/")[0]!.split(".").map(Number) as number[];
    const ip = `${o1}.${o2}.${o3}.${o4! + 3}`;
    const got = await s.assignIP(ip, { handleId: "s" });
    expect(got.block).toBe(first.block);
    const owners = await holders(mem);
    expect(owners.get(ip)).toBe("s");
    expect(owners.size).toBe(3);
  });

  it("releaseIPs finds an address in an old-size block its cached listing predates", async () => {
    await putPool(mem, "v4", { cidr: "10.0.0.0/28", blockSize: 30 });
    const r = createIpam({ datastore: mem, configTtlMs: 0 });
    await r.utilisation(); // r lists the blocks: none yet
    const a = createIpam({ datastore: mem, configTtlMs: 0 });
    const held = (await a.autoAssign({ handleId: "a", node: "na", num4: 1 })).ipv4[0]!;
    await putPool(mem, "v4", { cidr: "10.0.0.0/28", blockSize: 29 });
    const res = await r.releaseIPs([held.ip]);
    expect(res.released).toEqual([{ ip: held.ip, handleId: "a" }]);
    expect((await holders(mem)).size).toBe(0);
  });

  it("autoAssign does not claim a new block over one it has not seen since the pool changed", async () => {
    // Two /28 blocks; each host holds one.
    await putPool(mem, "v4", { cidr: "10.0.0.0/27", blockSize: 28 });
    const a = createIpam({ datastore: mem, configTtlMs: 0 });
    const b = createIpam({ datastore: mem, configTtlMs: 0 });
    const first = await a.autoAssign({ handleId: "a1", node: "na", num4: 1 });
    const taken = await b.autoAssign({ handleId: "b1", node: "nb", num4: 16 });
    expect(taken.ipv4[0]!.block).not.toBe(first.ipv4[0]!.block);
    // The operator shrinks the block size; `a` still has only its own block cached.
    await putPool(mem, "v4", { cidr: "10.0.0.0/27", blockSize: 29 });
    await expect(a.autoAssign({ handleId: "a2", node: "na", num4: 16 })).rejects.toSatisfy((e) =>
      isIpamError(e, "pool-exhausted"),
    );
    const owners = await holders(mem);
    for (const x of taken.ipv4) expect(owners.get(x.ip)).toBe("b1");
    expect(owners.size).toBe(17);
  });
});

describe("gc racing with a new allocation for the same handle", () => {
  it("releases nothing of a handle that came back between the report and the commit", async () => {
    await putPool(mem, "v4", { cidr: "10.0.0.0/24", blockSize: 26 });
    const now = () => clock;
    const old = createIpam({ datastore: mem, configTtlMs: 0, now });
    const first = (await old.autoAssign({ handleId: "net.c1", node: "n1", num4: 1 })).ipv4[0]!;
    // A foreign writer lost the handle object: the leak is known by its block allocations only.
    await mem.delete({ kind: IpamKind.Handle, name: "net.c1" });
    clock += 60_000;

    const { ds, pauseNext } = pausing(mem);
    const collector = createIpam({ datastore: ds, configTtlMs: 0, now });
    const gate = pauseNext();
    const gc = collector.gc([], 30_000);
    await gate.reached;
    // Meanwhile the runtime retries the ADD of that container on another node: the handle is live again.
    const again = (
      await createIpam({ datastore: mem, configTtlMs: 0, now }).autoAssign({
        handleId: "net.c1",
        node: "n2",
        num4: 1,
      })
    ).ipv4[0]!;
    expect(again.block).not.toBe(first.block);
    gate.release();
    const result = await gc;

    expect(result.released).toEqual([]);
    expect(result.deferred).toEqual(["net.c1"]);
    const owners = await holders(mem);
    expect(owners.get(first.ip)).toBe("net.c1");
    expect(owners.get(again.ip)).toBe("net.c1");
  });
});

describe("stale release", () => {
  it("a release guarded by the old sequence number leaves a concurrent re-allocation alone", async () => {
    await putPool(mem, "v4", { cidr: "10.0.0.0/30", blockSize: 30 });
    await putIpamConfig(mem, { strictAffinity: true });
    const a = createIpam({ datastore: mem, configTtlMs: 0 });
    const got = (await a.autoAssign({ handleId: "old", node: "n", num4: 4 })).ipv4;
    const victim = got[0]!;
    const { ds, pauseNext } = pausing(mem);
    const stale = createIpam({ datastore: ds, configTtlMs: 0 });
    // Warm the stale client's cache with the block as it is now.
    await stale.ipsByHandle("old");
    const gate = pauseNext();
    const rel = stale.releaseIPs([{ ip: victim.ip, sequenceNumber: victim.sequenceNumber }]);
    await gate.reached;
    // Meanwhile the address is freed and handed to someone else.
    await a.releaseIPs([victim.ip]);
    const reused = (await a.autoAssign({ handleId: "new", node: "n", num4: 1 })).ipv4[0]!;
    expect(reused.ip).toBe(victim.ip);
    gate.release();
    const r = await rel;
    expect(r.released).toEqual([]);
    expect(r.skipped).toEqual([{ ip: victim.ip, reason: "sequence-mismatch" }]);
    expect((await holders(mem)).get(victim.ip)).toBe("new");
    const blocks = (await mem.list<IpamBlockObject>(IpamKind.Block)).items;
    expect(blocks).toHaveLength(1);
  });
});

describe("releaseHostAffinities while the host allocates", () => {
  it("does not drop the affinity of a block the host took over after the listing", async () => {
    await putPool(mem, "v4", { cidr: "10.0.0.0/30", blockSize: 30 });
    const now = () => clock;
    const opts = { configTtlMs: 0, now, reuseCooldownMs: 1000 };
    const n = createIpam({ datastore: mem, ...opts });
    // The block ends up empty, unaffine, kept for its cool-down; a crashed two-phase writer left a
    // pending affinity of node n on it.
    await n.autoAssign({ handleId: "h1", node: "m", num4: 1 });
    await n.releaseHostAffinities("m");
    await n.releaseByHandle("h1");
    const [block] = (await mem.list<IpamBlockObject>(IpamKind.Block)).items;
    expect(block!.spec.affinity).toBeNull();
    await mem.create({
      kind: IpamKind.Affinity,
      metadata: { name: "n-10-0-0-0-30" },
      spec: { node: "n", cidr: "10.0.0.0/30", state: "pending", deleted: false },
    });
    clock += 1000;

    const { ds, pauseNext } = pausing(mem);
    const r = createIpam({ datastore: ds, ...opts });
    const gate = pauseNext("get", ([key]) => (key as { kind: string }).kind === IpamKind.Affinity);
    const release = r.releaseHostAffinities("n");
    await gate.reached;
    // Between the release's block read and its commit, node n takes the empty block over.
    const got = (await n.autoAssign({ handleId: "h2", node: "n", num4: 1 })).ipv4[0]!;
    expect(got.block).toBe("10.0.0.0/30");
    gate.release();
    const res = await release;

    expect(res.nonEmpty).toEqual(["10.0.0.0/30"]);
    const report = await n.check(["h2"]);
    expect(report.danglingAffinities).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
