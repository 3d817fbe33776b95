import { createRecordingLogger, type IPPool, type Node, silentLogger, validateResource } from "@margay/api";
import { createMemoryDatastore, type Datastore, decorateDatastore } from "@margay/datastore";
import { createIpam } from "@margay/ipam";
import { afterEach, describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import { isAgentError } from "./agent-error.js";
import type { DefaultPoolConfig, NetworkingBackend } from "./config/types.js";
import { createHealth } from "./health.js";
import {
  ensureDefaultPools,
  type RegistrationContext,
  registerNode,
  vxlanTunnelHandle,
  vxlanTunnelMac,
} from "./registration.js";

const V4: DefaultPoolConfig = {
  name: "default-ipv4-ippool",
  cidr: "10.244.0.0/16",
  blockSize: 26,
  ipipMode: "Never",
  vxlanMode: "Always",
  natOutgoing: true,
  nodeSelector: "all()",
};
const V6: DefaultPoolConfig = {
  ...V4,
  name: "default-ipv6-ippool",
  cidr: "fd00:10:244::/48",
  blockSize: 122,
};

const stores: Datastore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((d) => d.close()));
});

function store(): Datastore {
  const ds = createMemoryDatastore({ validate: apiValidator });
  stores.push(ds);
  return ds;
}

function ctxFor(
  datastore: Datastore,
  nodeName: string,
  opts: { backend?: NetworkingBackend; asNumber?: number; v6?: boolean } = {},
): RegistrationContext {
  return {
    config: {
      nodeName,
      asNumber: opts.asNumber,
      networkingBackend: opts.backend ?? "vxlan",
      defaultPools: { ipv4: V4, ipv6: opts.v6 ? V6 : undefined },
    },
    datastore,
    logger: silentLogger,
  };
}

const addrs = (ipv4: string | undefined, ipv6?: string) => ({
  ipv4,
  ipv6,
  interface: "eth0",
  interfaceMtu: 1500,
});

async function pool(ds: Datastore, name: string, cidr: string, vxlanMode = "Never"): Promise<void> {
  await ds.create(
    validateResource({
      apiVersion: "margay.io/v1",
      kind: "IPPool",
      metadata: { name },
      spec: { cidr, vxlanMode },
    }),
  );
}

describe("vxlanTunnelMac", () => {
  it("is stable, per node and family, locally administered and unicast", () => {
    const mac = vxlanTunnelMac("node-a", 4);
    expect(mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    expect(vxlanTunnelMac("node-a", 4)).toBe(mac);
    expect(vxlanTunnelMac("node-b", 4)).not.toBe(mac);
    expect(vxlanTunnelMac("node-a", 6)).not.toBe(mac);
    for (const n of ["a", "b", "c", "node-1", "node-2", "x".repeat(200)]) {
      const first = Number.parseInt(vxlanTunnelMac(n, 4).slice(0, 2), 16);
      expect(first & 0x02).toBe(0x02);
      expect(first & 0x01).toBe(0);
    }
  });
});

describe("registerNode", () => {
  it("writes addresses with prefixes, the BGP identity and AS, and a valid Node", async () => {
    const ds = store();
    const r = await registerNode(
      ctxFor(ds, "node-a", { backend: "bgp", asNumber: 64513 }),
      addrs("10.0.0.1/24", "fd00::1/64"),
    );
    expect(r.node.spec).toEqual({
      addresses: [
        { address: "10.0.0.1/24", type: "CalicoNodeIP" },
        { address: "fd00::1/64", type: "CalicoNodeIP" },
      ],
      bgp: { ipv4Address: "10.0.0.1/24", ipv6Address: "fd00::1/64", asNumber: 64513 },
    });
    expect(r.vxlan).toEqual({ ipv4: undefined, ipv6: undefined });
    const stored = await ds.get<Node>({ kind: "Node", name: "node-a" });
    expect(validateResource(stored)).toEqual(stored);
  });

  it("keeps what users set (labels, annotations, other addresses, orchRefs, RR cluster id, an AS when none is configured)", async () => {
    const ds = store();
    await ds.create(
      validateResource({
        apiVersion: "margay.io/v1",
        kind: "Node",
        metadata: { name: "node-a", labels: { rack: "r1" }, annotations: { note: "x" } },
        spec: {
          addresses: [
            { address: "192.168.9.9/24", type: "CalicoNodeIP" },
            { address: "203.0.113.7", type: "ExternalIP" },
          ],
          orchRefs: [{ orchestrator: "k8s", nodeName: "node-a" }],
          bgp: { ipv4Address: "192.168.9.9/24", asNumber: 65001, routeReflectorClusterID: "1.0.0.1" },
        },
      }),
    );
    const r = await registerNode(ctxFor(ds, "node-a", { backend: "bgp" }), addrs("10.0.0.1/24"));
    expect(r.node.metadata.labels).toEqual({ rack: "r1" });
    expect(r.node.metadata.annotations).toEqual({ note: "x" });
    expect(r.node.spec).toEqual({
      addresses: [
        { address: "10.0.0.1/24", type: "CalicoNodeIP" },
        { address: "203.0.113.7", type: "ExternalIP" },
      ],
      orchRefs: [{ orchestrator: "k8s", nodeName: "node-a" }],
      bgp: { ipv4Address: "10.0.0.1/24", asNumber: 65001, routeReflectorClusterID: "1.0.0.1" },
    });
  });

  it("does not rewrite an unchanged Node", async () => {
    const ds = store();
    const c = ctxFor(ds, "node-a", { backend: "bgp" });
    const first = await registerNode(c, addrs("10.0.0.1/24"));
    const second = await registerNode(c, addrs("10.0.0.1/24"));
    expect(second.node.metadata.resourceVersion).toBe(first.node.metadata.resourceVersion);
  });

  it("re-applies its fields over a concurrent edit instead of overwriting it (compare-and-swap retry)", async () => {
    const inner = store();
    await registerNode(ctxFor(inner, "node-a", { backend: "bgp" }), addrs("10.0.0.1/24"));
    let raced = false;
    // An operator labels the node between the agent's read and its write, once.
    const ds = decorateDatastore(inner, {
      update: (async (obj: Node) => {
        if (!raced) {
          raced = true;
          const cur = await inner.get<Node>({ kind: "Node", name: "node-a" });
          await inner.update({ ...cur, metadata: { ...cur.metadata, labels: { edited: "yes" } } });
        }
        return inner.update(obj);
      }) as Datastore["update"],
    });
    const r = await registerNode(ctxFor(ds, "node-a", { backend: "bgp" }), addrs("10.0.0.2/24"));
    expect(raced).toBe(true);
    expect(r.node.metadata.labels).toEqual({ edited: "yes" });
    expect(r.node.spec.bgp?.ipv4Address).toBe("10.0.0.2/24");
  });

  it("allocates the VXLAN tunnel address from IPAM under Calico's handle, and keeps it and the MAC across restarts", async () => {
    const ds = store();
    await pool(ds, "p", "10.244.0.0/16", "Always");
    const ipam1 = createIpam({ datastore: ds });
    const r1 = await registerNode(ctxFor(ds, "node-a", { backend: "vxlan" }), addrs("10.0.0.1/24"), {
      ipam: ipam1,
    });
    await ipam1.close();
    expect(r1.vxlan.ipv4?.address).toMatch(/^10\.244\./);
    expect(r1.node.spec.ipv4VXLANTunnelAddr).toBe(r1.vxlan.ipv4?.address);
    expect(r1.node.spec.vxlanTunnelMACAddr).toBe(vxlanTunnelMac("node-a", 4));
    // A restart: a new IPAM client, the same datastore.
    const ipam2 = createIpam({ datastore: ds });
    const r2 = await registerNode(ctxFor(ds, "node-a", { backend: "vxlan" }), addrs("10.0.0.1/24"), {
      ipam: ipam2,
    });
    expect(r2.vxlan.ipv4).toEqual(r1.vxlan.ipv4);
    expect(r2.node.metadata.resourceVersion).toBe(r1.node.metadata.resourceVersion);
    expect(await ipam2.ipsByHandle(vxlanTunnelHandle("node-a", 4))).toEqual([r1.vxlan.ipv4?.address]);
    await ipam2.close();
  });

  it("with backend bgp, a tunnel address only when a pool uses VXLAN; released when none does any more", async () => {
    const ds = store();
    await pool(ds, "p", "10.244.0.0/16", "Never");
    const ipam = createIpam({ datastore: ds, configTtlMs: 0 });
    const c = ctxFor(ds, "node-a", { backend: "bgp" });
    expect(
      (await registerNode(c, addrs("10.0.0.1/24"), { ipam })).node.spec.ipv4VXLANTunnelAddr,
    ).toBeUndefined();
    const p = await ds.get<IPPool>({ kind: "IPPool", name: "p" });
    await ds.update({ ...p, spec: { ...p.spec, vxlanMode: "CrossSubnet" } });
    const on = await registerNode(c, addrs("10.0.0.1/24"), { ipam });
    expect(on.node.spec.ipv4VXLANTunnelAddr).toMatch(/^10\.244\./);
    const p2 = await ds.get<IPPool>({ kind: "IPPool", name: "p" });
    await ds.update({ ...p2, spec: { ...p2.spec, vxlanMode: "Never" } });
    const off = await registerNode(c, addrs("10.0.0.1/24"), { ipam });
    expect(off.node.spec.ipv4VXLANTunnelAddr).toBeUndefined();
    expect(off.node.spec.vxlanTunnelMACAddr).toBeUndefined();
    expect(await ipam.ipsByHandle(vxlanTunnelHandle("node-a", 4))).toEqual([]);
    await ipam.close();
  });

  it("allocates an IPv6 tunnel address from an IPv6 VXLAN pool", async () => {
    const ds = store();
    await pool(ds, "p4", "10.244.0.0/16", "Always");
    await pool(ds, "p6", "fd00:10:244::/48", "Always");
    const ipam = createIpam({ datastore: ds });
    const r = await registerNode(ctxFor(ds, "node-a"), addrs("10.0.0.1/24", "fd00::1/64"), { ipam });
    expect(r.node.spec.ipv6VXLANTunnelAddr).toMatch(/^fd00:10:244:/);
    expect(r.node.spec.vxlanTunnelMACAddrV6).toBe(vxlanTunnelMac("node-a", 6));
    await ipam.close();
  });

  it("warns (log and health) when another node claims the same address, and still registers", async () => {
    const ds = store();
    await registerNode(ctxFor(ds, "node-b", { backend: "bgp" }), addrs("10.0.0.1/24"));
    const logger = createRecordingLogger();
    const health = createHealth();
    const r = await registerNode(
      { ...ctxFor(ds, "node-a", { backend: "bgp" }), logger, health },
      addrs("10.0.0.1/16"),
    );
    expect(r.conflicts).toEqual([{ address: "10.0.0.1", node: "node-b" }]);
    expect(logger.find({ level: "warn", message: "another node claims this node's address" })).toHaveLength(
      1,
    );
    expect(health.snapshot().components.registration).toEqual({
      live: true,
      ready: true,
      reason: "address 10.0.0.1 is also claimed by node node-b",
    });
    // Resolved: the warning goes away.
    await registerNode({ ...ctxFor(ds, "node-a", { backend: "bgp" }), logger, health }, addrs("10.0.0.9/16"));
    expect(health.snapshot().components.registration).toEqual({ live: true, ready: true });
  });

  it("fails with a typed error naming the node and the datastore's code", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    await ds.close();
    const err = await registerNode(ctxFor(ds, "node-a"), addrs("10.0.0.1/24")).catch((e: unknown) => e);
    expect(isAgentError(err)).toBe(true);
    expect(err).toMatchObject({
      code: "registration-failed",
      details: { step: "registration", node: "node-a", causeCode: "closed" },
    });
  });

  it("requires an IPAM client when VXLAN is in use", async () => {
    const ds = store();
    const err = await registerNode(ctxFor(ds, "node-a", { backend: "vxlan" }), addrs("10.0.0.1/24")).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: "registration-failed" });
  });
});

describe("ensureDefaultPools", () => {
  it("creates the default pools of each configured family once", async () => {
    const ds = store();
    const c = ctxFor(ds, "node-a", { v6: true });
    expect(await ensureDefaultPools(c)).toEqual({
      created: ["default-ipv4-ippool", "default-ipv6-ippool"],
      existing: [],
      overlaps: [],
    });
    const again = await ensureDefaultPools(c);
    expect(again.created).toEqual([]);
    const pools = (await ds.list<IPPool>("IPPool")).items;
    expect(pools.map((p) => [p.metadata.name, p.spec.cidr, p.spec.vxlanMode, p.spec.natOutgoing])).toEqual([
      ["default-ipv4-ippool", "10.244.0.0/16", "Always", true],
      ["default-ipv6-ippool", "fd00:10:244::/48", "Always", true],
    ]);
  });

  it("creates none for a family that already has a pool, whatever its CIDR", async () => {
    const ds = store();
    await pool(ds, "mine", "172.16.0.0/16");
    const r = await ensureDefaultPools(ctxFor(ds, "node-a", { v6: true }));
    expect(r).toEqual({ created: ["default-ipv6-ippool"], existing: ["mine"], overlaps: [] });
  });

  it("N agents starting together: exactly one default pool, every node registered with its own tunnel address", async () => {
    const ds = store();
    const n = 8;
    const results = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const c = ctxFor(ds, `node-${i}`);
        const pools = await ensureDefaultPools(c);
        const ipam = createIpam({ datastore: ds });
        try {
          return { pools, reg: await registerNode(c, addrs(`10.0.0.${i + 1}/24`), { ipam }) };
        } finally {
          await ipam.close();
        }
      }),
    );
    expect(results.filter((r) => r.pools.created.length > 0)).toHaveLength(1);
    expect((await ds.list("IPPool")).items.map((p) => p.metadata.name)).toEqual(["default-ipv4-ippool"]);
    const tunnels = results.map((r) => r.reg.vxlan.ipv4?.address);
    expect(new Set(tunnels).size).toBe(n);
    expect((await ds.list("Node")).items).toHaveLength(n);
    expect(results.every((r) => r.reg.conflicts.length === 0)).toBe(true);
  });

  it("reports a pool of the family created concurrently under another name that overlaps", async () => {
    const inner = store();
    // Another node creates its own pool (another name) between our list and our create.
    const ds = decorateDatastore(inner, {
      create: (async (obj: IPPool) => {
        if (obj.metadata.name === "default-ipv4-ippool") await pool(inner, "other-default", "10.244.0.0/17");
        return inner.create(obj);
      }) as Datastore["create"],
    });
    const r = await ensureDefaultPools(ctxFor(ds, "node-a"));
    expect(r.overlaps).toEqual([{ pool: "default-ipv4-ippool", overlaps: "other-default" }]);
  });

  it("a datastore failure is a typed default-pool-failed error", async () => {
    const ds = createMemoryDatastore({ validate: apiValidator });
    await ds.close();
    const err = await ensureDefaultPools(ctxFor(ds, "node-a")).catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "default-pool-failed",
      details: { step: "default-pools", pool: "default-ipv4-ippool", causeCode: "closed" },
    });
  });
});
