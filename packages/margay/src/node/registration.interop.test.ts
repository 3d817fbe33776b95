/**
 * Registration against a real etcd: several agents (each with its own etcd client, as on separate hosts)
 * start together. Exactly one default pool is created, every Node is registered with its own VXLAN tunnel
 * address, and a restart keeps each node's address and MAC.
 */
import { silentLogger } from "@margay/api";
import { createEtcdDatastore, type Datastore } from "@margay/datastore";
import { type EtcdServer, startEtcd } from "@margay/datastore/testing";
import { createIpam } from "@margay/ipam";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiValidator } from "../config/api-validator.js";
import type { DefaultPoolConfig } from "./config/types.js";
import { ensureDefaultPools, type RegistrationContext, registerNode } from "./registration.js";

const V4: DefaultPoolConfig = {
  name: "default-ipv4-ippool",
  cidr: "10.244.0.0/16",
  blockSize: 26,
  ipipMode: "Never",
  vxlanMode: "Always",
  natOutgoing: true,
  nodeSelector: "all()",
};

let etcd: EtcdServer;
const clients: Datastore[] = [];

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)));
  await etcd?.stop();
});

function client(prefix: string): Datastore {
  const ds = createEtcdDatastore({ endpoints: etcd.endpoints, prefix, validate: apiValidator });
  clients.push(ds);
  return ds;
}

function ctx(datastore: Datastore, nodeName: string): RegistrationContext {
  return {
    config: {
      nodeName,
      asNumber: undefined,
      networkingBackend: "vxlan",
      defaultPools: { ipv4: V4, ipv6: undefined },
    },
    datastore,
    logger: silentLogger,
  };
}

async function startAgent(prefix: string, i: number) {
  const ds = client(prefix);
  const c = ctx(ds, `node-${i}`);
  const pools = await ensureDefaultPools(c);
  const ipam = createIpam({ datastore: ds });
  try {
    const reg = await registerNode(
      c,
      { ipv4: `10.0.0.${i + 1}/24`, ipv6: undefined, interface: "eth0", interfaceMtu: 1500 },
      { ipam },
    );
    return { pools, reg };
  } finally {
    await ipam.close();
  }
}

describe("registration on etcd", () => {
  it("N agents starting together: one default pool, every node with its own tunnel address, stable across restarts", async () => {
    const prefix = "/margay-reg-race";
    const n = 6;
    const first = await Promise.all(Array.from({ length: n }, (_, i) => startAgent(prefix, i)));
    expect(first.filter((r) => r.pools.created.length > 0)).toHaveLength(1);
    const reader = client(prefix);
    expect((await reader.list("IPPool")).items.map((p) => p.metadata.name)).toEqual(["default-ipv4-ippool"]);
    expect((await reader.list("Node")).items).toHaveLength(n);
    const tunnels = first.map((r) => r.reg.vxlan.ipv4?.address);
    expect(tunnels.every((t) => t?.startsWith("10.244."))).toBe(true);
    expect(new Set(tunnels).size).toBe(n);
    expect(first.every((r) => r.reg.conflicts.length === 0)).toBe(true);

    // Every agent restarts at once: nothing changes.
    const second = await Promise.all(Array.from({ length: n }, (_, i) => startAgent(prefix, i)));
    expect(second.map((r) => r.reg.vxlan.ipv4)).toEqual(first.map((r) => r.reg.vxlan.ipv4));
    expect(second.every((r) => r.pools.created.length === 0)).toBe(true);
    expect(second.map((r) => r.reg.node.metadata.resourceVersion)).toEqual(
      first.map((r) => r.reg.node.metadata.resourceVersion),
    );
  });
});
